"""Write real images of a dataset as an ImageFolder (``<out>/<label>/<n>.png``).

For trying the service by hand: ``python -m standin.datasets.export animal-mnist --split train
--per-class 5 --out ./batch`` gives a correction batch ``vlmc correct ./batch`` can submit;
``--classes`` keeps only some classes (the emoji sets have hundreds), e.g.
``python -m standin.datasets.export emoji-openmoji --split train --per-class 5 --classes
snail hamster --out ./batch``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from standin.datasets.registry import DATASET_NAMES, load_dataset


def export_image_folder(
    name: str,
    split: str,
    per_class: int,
    out_dir: Path,
    seed: int = 0,
    classes: list[str] | None = None,
) -> int:
    """Save ``per_class`` images of every class (or of ``classes``) as PNGs; returns the count."""
    data = load_dataset(name, split, limit_per_class=per_class, seed=seed)  # type: ignore[arg-type]
    if classes:
        unknown = sorted(set(classes) - set(data.class_names))
        if unknown:
            raise SystemExit(f"{name} has no class {', '.join(map(repr, unknown))}")
        data = data.only_classes([data.class_names.index(label) for label in classes])
    counts: dict[int, int] = {}
    for image, label in tqdm(
        zip(data.images, data.labels, strict=True), total=len(data.images), desc=f"export {name}"
    ):
        folder = out_dir / data.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        index = counts.get(label, 0)
        image.save(folder / f"{index}.png")
        counts[label] = index + 1
    return sum(counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=DATASET_NAMES)
    parser.add_argument("--split", choices=("train", "test"), default="train")
    parser.add_argument("--per-class", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", nargs="+", default=None, help="only these class names")
    args = parser.parse_args()
    written = export_image_folder(
        args.dataset, args.split, args.per_class, args.out, args.seed, args.classes
    )
    print(f"wrote {written} images to {args.out}")


if __name__ == "__main__":
    main()
