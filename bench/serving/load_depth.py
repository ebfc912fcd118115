"""Version load time against chain depth, with and without checkpoints.

What is measured is what the serving cache does to load a version
(``service/serving/cache.py``: a fresh ``ModelCache.pinned`` -> ``_load``: the base checkpoint
from disk, the version's state rebuilt and hash-checked by ``version_state``, the weights
copied into the encoder), for the stand-in base model (``standin/basemodel``, the embedded
default's). Two chains of ``max(depths)`` versions are built from it with small real deltas
(a few rows of two tensors perturbed per version, as a head-restricted update would), one
stored with ``checkpoint_every`` and one with no checkpoints at all (as versions written
before checkpoints existed). Each depth's figure is the median of ``repeats`` loads.

``python -m bench.serving.load_depth`` prints a markdown table; ``measure_load_depth``
returns the numbers (``bench.serving.run`` calls it).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from sqlalchemy.orm import Session

from bench.serving.versions import add_version, register_model
from service.db.migrate import upgrade_head
from service.db.session import create_db_engine, create_session_factory
from service.db.tables import Model, Version
from service.modelling.checkpoints import load_checkpoint
from service.serving.cache import ModelCache
from service.settings import Settings
from service.storage.blobs import FilesystemBlobStore
from service.versions.repository import rebuild_path
from standin.basemodel.release import materialise_release

DEPTHS = (1, 10, 50, 100, 200)
REPEATS = 3
# The target: loading the deepest version costs at most this many times the shallowest.
TARGET_RATIO = 1.5


@dataclass(frozen=True)
class DepthTiming:
    """Median load seconds of the version ``depth`` deltas away from the base."""

    depth: int
    with_checkpoints_s: float
    without_checkpoints_s: float
    # Deltas the load replays with checkpoints (after the nearest checkpoint).
    replayed_with_checkpoints: int


@dataclass(frozen=True)
class LoadDepthResult:
    checkpoint_every: int
    repeats: int
    timings: list[DepthTiming]
    # The deepest version whose load replays the most deltas (checkpoint_every - 1): the
    # listed depths may fall on checkpoints.
    worst_case: DepthTiming

    def ratio(self, with_checkpoints: bool) -> float:
        """Load time at the deepest depth over that at the shallowest."""
        first, last = self.timings[0], self.timings[-1]
        if with_checkpoints:
            return last.with_checkpoints_s / first.with_checkpoints_s
        return last.without_checkpoints_s / first.without_checkpoints_s

    def markdown(self) -> str:
        lines = [
            f"| depth | load, checkpoints every {self.checkpoint_every} (s) | deltas replayed "
            "| load, no checkpoints (s) |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {t.depth} | {t.with_checkpoints_s:.3f} | {t.replayed_with_checkpoints} "
            f"| {t.without_checkpoints_s:.3f} |"
            for t in [*self.timings, self.worst_case]
        ]
        first, last = self.timings[0].depth, self.timings[-1].depth
        lines.append("")
        lines.append(
            f"Depth {last} / depth {first}: {self.ratio(True):.2f}x with checkpoints, "
            f"{self.ratio(False):.2f}x without (target <= {TARGET_RATIO}x; median of "
            f"{self.repeats} loads each). Worst case with checkpoints (depth "
            f"{self.worst_case.depth}, {self.worst_case.replayed_with_checkpoints} deltas): "
            f"{self.worst_case.with_checkpoints_s / self.timings[0].with_checkpoints_s:.2f}x."
        )
        return "\n".join(lines)


def _perturbed(state: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
    child = dict(state)
    names = sorted(name for name, tensor in state.items() if tensor.dim() == 2)
    for name in (names[step % len(names)], names[(step * 7 + 3) % len(names)]):
        tensor = child[name].clone()
        row = step % tensor.shape[0]
        tensor[row : row + 2] += 1e-3
        child[name] = tensor
    return child


def _build_chain(
    session: Session,
    blobs: FilesystemBlobStore,
    base: Version,
    base_state: dict[str, torch.Tensor],
    length: int,
    checkpoint_every: int | None,
) -> list[Version]:
    chain = [base]
    state = base_state
    for step in range(length):
        child_state = _perturbed(state, step)
        chain.append(add_version(session, blobs, chain[-1], state, child_state, checkpoint_every))
        state = child_state
    session.commit()
    return chain


def _median_load_s(
    session: Session, blobs: FilesystemBlobStore, model: Model, version: Version, repeats: int
) -> float:
    seconds = []
    for _ in range(repeats):
        cache = ModelCache(blobs, "cpu", capacity=1)
        started = time.perf_counter()
        loaded = cache.pinned(session, model, version)
        seconds.append(time.perf_counter() - started)
        assert loaded.version_id == version.id
    return statistics.median(seconds)


def _replayed(session: Session, version: Version) -> int:
    return len(rebuild_path(session, version)) - 1


def measure_load_depth(
    depths: Sequence[int] = DEPTHS,
    repeats: int = REPEATS,
    checkpoint_every: int | None = None,
    work_dir: Path | None = None,
) -> LoadDepthResult:
    """Median version load seconds per chain depth, with and without checkpoints
    (``checkpoint_every``: the service's default setting unless given)."""
    every = checkpoint_every or Settings().checkpoint_every
    with tempfile.TemporaryDirectory(dir=work_dir) as temporary:
        root = Path(temporary)
        model_dir = materialise_release(root / "standin-base")
        url = f"sqlite:///{root / 'bench.sqlite'}"
        upgrade_head(url)
        engine = create_db_engine(url)
        blobs = FilesystemBlobStore(root / "blobs")
        base_state = load_checkpoint(model_dir, None).encoder.image_encoder_state()
        chains: dict[bool, list[Version]] = {}
        try:
            with create_session_factory(engine)() as session:
                models = {}
                for checkpoints in (True, False):
                    model, base = register_model(
                        session, f"chain-{checkpoints}", base_state, model_dir
                    )
                    models[checkpoints] = model
                    chains[checkpoints] = _build_chain(
                        session,
                        blobs,
                        base,
                        base_state,
                        max(depths),
                        every if checkpoints else None,
                    )
                deepest = max(depths)
                worst = deepest - 1 - (deepest - 1) % every + every - 1
                worst = worst if worst <= deepest else worst - every
                timings = [
                    DepthTiming(
                        depth=depth,
                        with_checkpoints_s=_median_load_s(
                            session, blobs, models[True], chains[True][depth], repeats
                        ),
                        without_checkpoints_s=_median_load_s(
                            session, blobs, models[False], chains[False][depth], repeats
                        ),
                        replayed_with_checkpoints=_replayed(session, chains[True][depth]),
                    )
                    for depth in [*depths, worst]
                ]
        finally:
            engine.dispose()
    return LoadDepthResult(every, repeats, timings[:-1], timings[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--checkpoint-every", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = measure_load_depth(args.depths, args.repeats, args.checkpoint_every)
    print(result.markdown())


if __name__ == "__main__":
    main()
