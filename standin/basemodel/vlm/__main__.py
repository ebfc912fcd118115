"""``python -m standin.basemodel.vlm build [--out DIR]`` | ``materialise OUT_DIR [--base DIR]``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from standin.basemodel.builder import is_built
from standin.basemodel.release import RELEASE_DIR as BASE_RELEASE_DIR
from standin.basemodel.release import materialise_release
from standin.basemodel.vlm.build import build_vlm, is_released
from standin.basemodel.vlm.recipe import VlmRecipe
from standin.basemodel.vlm.release import RELEASE_DIR, materialise_vlm_release

DEFAULT_BASE_NAME = "standin-base"


def _build(args: argparse.Namespace) -> None:
    if is_released(args.out) and not args.force:
        print(f"{args.out} already holds a VLM release; pass --force to rebuild it")
        return
    recipe = VlmRecipe()
    if args.augmented_per_concept is not None:
        recipe = replace(recipe, augmented_per_concept=args.augmented_per_concept)
    info = build_vlm(
        args.out,
        seed=args.seed,
        recipe=recipe,
        steps=args.steps,
        threads=args.threads,
        base_release=args.base_release,
    )
    print(f"wrote {args.out} (sha256 {info['weights_sha256']}, {info['seconds']['total']:.0f} s)")
    print((args.out / "MODEL_CARD.md").read_text())


def _materialise(args: argparse.Namespace) -> None:
    base = args.base or args.out_dir.parent / DEFAULT_BASE_NAME
    if not is_built(base):
        print(f"assembling the base model into {base} (committed weights)")
        materialise_release(base)
    materialise_vlm_release(args.out_dir, base, args.release)
    print(f"assembled the VLM into {args.out_dir} (its vision tower pair: {base})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standin.basemodel.vlm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="train the VLM and write its release and card")
    build.add_argument("--out", type=Path, default=RELEASE_DIR, help="release directory")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--steps", type=int, default=None, help="training steps (default: recipe)")
    # One thread: on a 2-core machine shared with other work, two threads spin-wait for each
    # other and ran 3-8 times slower per step here (one thread runs a step in about 0.46 s).
    build.add_argument("--threads", type=int, default=1, help="torch threads (at most 2)")
    build.add_argument(
        "--augmented-per-concept",
        type=int,
        default=None,
        help="augmented renderings per concept and training style (default: recipe)",
    )
    build.add_argument(
        "--base-release",
        type=Path,
        default=BASE_RELEASE_DIR,
        help="the base model release whose image tower the VLM reads (default: the committed "
        "one; another comes from python -m standin.basemodel.release --model BUILD --release DIR)",
    )
    build.add_argument("--force", action="store_true", help="replace an existing release")
    build.set_defaults(run=_build)
    materialise = commands.add_parser("materialise", help="assemble a loadable LLaVA directory")
    materialise.add_argument("out_dir", type=Path)
    materialise.add_argument(
        "--base",
        type=Path,
        default=None,
        help=f"the base dual encoder directory (default: OUT_DIR/../{DEFAULT_BASE_NAME}, "
        "assembled from the committed base release if missing)",
    )
    materialise.add_argument("--release", type=Path, default=RELEASE_DIR)
    materialise.set_defaults(run=_materialise)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
