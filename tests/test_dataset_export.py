"""The ImageFolder export writes real, decodable images under one folder per label."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from standin.datasets.export import export_image_folder


def test_export_writes_an_image_folder(tmp_path: Path) -> None:
    written = export_image_folder("animal-mnist", "test", per_class=2, out_dir=tmp_path)
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert written == 20 and len(folders) == 10 and "cat" in folders
    image = Image.open(tmp_path / "cat" / "0.png")
    image.load()
    assert image.size == (28, 28)
    assert len(set(image.tobytes())) > 2  # a real silhouette, not a blank


def test_export_of_chosen_emoji_concepts(tmp_path: Path) -> None:
    written = export_image_folder(
        "emoji-openmoji", "train", per_class=3, out_dir=tmp_path, classes=["snail", "violin"]
    )
    assert written == 6 and sorted(p.name for p in tmp_path.iterdir()) == ["snail", "violin"]
    image = Image.open(tmp_path / "snail" / "0.png")
    assert image.size == (64, 64) and image.mode == "RGB"
