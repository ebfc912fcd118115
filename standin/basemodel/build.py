"""Build the stand-in base model: ``python -m standin.basemodel.build --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from standin.basemodel.builder import build_base_model, is_built


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to create")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: recipe)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    if is_built(args.out):
        print(f"{args.out} already holds a built model; remove it to rebuild")
        return
    out_dir = build_base_model(args.out, seed=args.seed, steps=args.steps, threads=args.threads)
    print((out_dir / "README.md").read_text())


if __name__ == "__main__":
    main()
