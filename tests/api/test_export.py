"""Exporting a version as a standard Hugging Face checkpoint: the archive, loaded with
transformers alone, answers exactly as the service answers for that version."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path
from typing import Any

import httpx
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from PIL import Image
from safetensors import safe_open
from typer.testing import CliRunner, Result

from catalogue.captions import captions_for_labels
from service.db.tables import Version
from service.runtime import Runtime
from tests.api.conftest import LiveServer, error_code
from tests.api.versions_helpers import copy_version, train_version
from tests.conftest import ADMIN_KEY, to_png


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _trained(client: TestClient, model_id: str, fashion: Any, **options: Any) -> Version:
    labels = [fashion.class_names[label] for label in fashion.labels]
    return train_version(_runtime(client), model_id, fashion.images, labels, **options)


def unpack(archive: bytes, into: Path) -> Path:
    """The one folder the archive holds, extracted under ``into``."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        roots = {Path(name).parts[0] for name in tar.getnames()}
        assert len(roots) == 1, roots
        tar.extractall(into, filter="data")
    return into / roots.pop()


def _export(client: TestClient, model_id: str, version_id: str, into: Path) -> Path:
    response = client.get(f"/v1/models/{model_id}/versions/{version_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-tar"
    assert int(response.headers["content-length"]) == len(response.content)
    directory = unpack(response.content, into)
    assert response.headers["content-disposition"] == f'attachment; filename="{directory.name}.tar"'
    return directory


def _rgb(image: Image.Image) -> Image.Image:
    """The image as the service decodes its upload (PNG, then RGB)."""
    return Image.open(io.BytesIO(to_png(image))).convert("RGB")


def _b64(image: Image.Image) -> str:
    return base64.b64encode(to_png(image)).decode()


def _served_probabilities(
    client: TestClient, model_id: str, images: list[Image.Image], labels: list[str], version: str
) -> torch.Tensor:
    body = {"images": [_b64(image) for image in images], "labels": labels, "version_id": version}
    response = client.post(f"/v1/models/{model_id}/classify", json=body)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    return torch.tensor([[row["probabilities"][label] for label in labels] for row in predictions])


def test_an_exported_dual_encoder_version_answers_with_transformers_as_the_service_does(
    client: TestClient, model: dict[str, Any], fashion: Any, tmp_path: Path
) -> None:
    from transformers import AutoProcessor, VisionTextDualEncoderModel

    version = _trained(client, model["id"], fashion)
    directory = _export(client, model["id"], version.id, tmp_path)
    assert directory.name == "tiny-v2"
    # The server's temporary copy went with the stream.
    assert not any((_runtime(client).settings.data_dir / "exports").iterdir())
    names = {path.name for path in directory.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    card = (directory / "README.md").read_text()
    assert "# tiny, version 2" in card
    assert f"version 1 (`{model['active_version_id']}`)" in card  # the parent
    assert "| method | full-ft |" in card

    exported = VisionTextDualEncoderModel.from_pretrained(
        directory, local_files_only=True, use_safetensors=True
    ).eval()
    processor = AutoProcessor.from_pretrained(directory, local_files_only=True)
    images = list(fashion.images[:6])
    labels = list(fashion.class_names)
    inputs = processor(
        text=captions_for_labels(labels),
        images=[_rgb(image) for image in images],
        return_tensors="pt",
        padding=True,
        truncation=True,
    )
    with torch.no_grad():
        outputs = exported(**inputs)
    probabilities = outputs.logits_per_image.softmax(dim=-1)

    served = _served_probabilities(client, model["id"], images, labels, version.id)
    assert torch.allclose(probabilities, served, atol=1e-5), (probabilities - served).abs().max()
    # The export is the version, not the base: version 1 answers otherwise.
    base = _served_probabilities(client, model["id"], images, labels, model["active_version_id"])
    assert (probabilities - base).abs().max() > 1e-3

    embed = client.post(
        f"/v1/models/{model['id']}/embed",
        json={"images": [_b64(image) for image in images], "version_id": version.id},
    )
    assert embed.status_code == 200, embed.text
    served_embeddings = torch.tensor(embed.json()["image_embeddings"])
    exported_embeddings = F.normalize(outputs.image_embeds, dim=-1)
    assert torch.allclose(exported_embeddings, served_embeddings, atol=1e-5)


def test_an_exported_llava_version_answers_with_transformers_as_the_service_does(
    client: TestClient, vlm: dict[str, Any], fashion: Any, tmp_path: Path, api_vlm_dir: Path
) -> None:
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    version = _trained(client, vlm["id"], fashion, learning_rate=5e-2)
    directory = _export(client, vlm["id"], version.id, tmp_path)
    exported = LlavaForConditionalGeneration.from_pretrained(
        directory, local_files_only=True, use_safetensors=True
    ).eval()
    processor = AutoProcessor.from_pretrained(directory, local_files_only=True)

    # The vision tower is the version's (not the base's); the language model is the base's.
    def tensors(path: Path) -> dict[str, torch.Tensor]:
        with safe_open(str(path / "model.safetensors"), framework="pt") as weights:
            return {name: weights.get_tensor(name) for name in weights.keys()}  # noqa: SIM118

    ours, base = tensors(directory), tensors(api_vlm_dir)
    assert set(ours) == set(base)
    changed = {name for name in ours if not torch.equal(ours[name], base[name])}
    assert changed and all("vision_tower" in name for name in changed), sorted(changed)[:5]

    question = "What is in the picture?"
    tokenizer = processor.tokenizer
    for image in fashion.images[:4]:
        served = client.post(
            "/v1/chat/completions",
            json={
                "model": "tiny-vlm",
                "version_id": version.id,
                "max_tokens": 8,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{_b64(image)}"},
                            },
                            {"type": "text", "text": question},
                        ],
                    }
                ],
            },
        )
        assert served.status_code == 200, served.text
        assert served.json()["version_id"] == version.id
        # LLaVA-1.5's prompt with one <image>: the processor expands it to the image tokens.
        inputs = processor(
            images=_rgb(image), text=f"USER: <image>\n{question} ASSISTANT:", return_tensors="pt"
        )
        with torch.no_grad():
            generated = exported.generate(
                **inputs,
                max_new_tokens=8,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        ids = generated[0, inputs["input_ids"].shape[1] :].tolist()
        if tokenizer.eos_token_id in ids:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
        answer = tokenizer.decode(ids, skip_special_tokens=True).strip()
        assert answer == served.json()["choices"][0]["message"]["content"]


def test_only_a_ready_retained_version_of_a_visible_model_is_exported(
    client: TestClient, model: dict[str, Any], fashion: Any, key_with: Any
) -> None:
    version = _trained(client, model["id"], fashion)
    failed = copy_version(_runtime(client), version, "failed")
    pending = copy_version(_runtime(client), version, "pending")
    archived = copy_version(_runtime(client), version, "ready")
    response = client.post(f"/v1/models/{model['id']}/versions/{archived.id}/archive")
    assert response.status_code == 200, response.text
    url = f"/v1/models/{model['id']}/versions/{{}}/export"
    cases = [
        ("00000000-0000-0000-0000-000000000000", 404, "version_not_found"),
        (failed.id, 409, "version_failed"),
        (pending.id, 409, "version_not_ready"),
        (archived.id, 409, "version_archived"),
        # By number, the same rows (a string of digits is a number: "0" * 36 would be one).
        (str(failed.number), 409, "version_failed"),
        (str(archived.number), 409, "version_archived"),
        ("99", 404, "version_not_found"),
        ("0", 422, "invalid_version_number"),
    ]
    for version_id, status, code in cases:
        response = client.get(url.format(version_id))
        assert response.status_code == status, response.text
        assert error_code(response) == code
    # The weights are the model itself: a key that may only use the model cannot take them.
    for scope in ("inference", "corrections"):
        response = client.get(
            url.format(version.id), headers={"Authorization": f"Bearer {key_with(scope)}"}
        )
        assert response.status_code == 403, response.text
    unknown = client.get(f"/v1/models/{'0' * 36}/versions/{version.id}/export")
    assert unknown.status_code == 404 and error_code(unknown) == "model_not_found"


def test_vlmc_export_writes_a_loadable_directory_and_refuses_a_non_empty_one(
    live_server: LiveServer, api_model_dir: Path, fashion: Any, tmp_path: Path
) -> None:
    from transformers import AutoProcessor, VisionTextDualEncoderModel

    from service.cli import app

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    registered = httpx.post(
        f"{live_server.url}/v1/models",
        json={"name": "tiny", "base_path": str(api_model_dir)},
        headers=headers,
    )
    assert registered.status_code == 201, registered.text
    model_id = registered.json()["id"]
    labels = [fashion.class_names[label] for label in fashion.labels]
    version = train_version(live_server.runtime, model_id, fashion.images, labels)
    failed = copy_version(live_server.runtime, version, "failed")

    def vlmc(*args: str) -> Result:
        env = {"VLMC_URL": live_server.url, "VLMC_API_KEY": ADMIN_KEY, "COLUMNS": "200"}
        return CliRunner().invoke(app, list(args), env=env)

    out = tmp_path / "checkpoint"
    written = vlmc("export", "tiny", "2", "--out", str(out))
    assert written.exit_code == 0, written.output
    assert f"version 2 of tiny exported to {out}" in written.stdout
    exported = VisionTextDualEncoderModel.from_pretrained(out, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(out, local_files_only=True)
    images = list(fashion.images[:3])
    pixels = processor(images=[_rgb(image) for image in images], return_tensors="pt")
    with torch.no_grad():
        ours = F.normalize(exported.get_image_features(**pixels).pooler_output, dim=-1)
    embed = httpx.post(
        f"{live_server.url}/v1/models/{model_id}/embed",
        json={"images": [_b64(image) for image in images], "version_id": version.id},
        headers=headers,
    )
    assert embed.status_code == 200, embed.text
    assert torch.allclose(ours, torch.tensor(embed.json()["image_embeddings"]), atol=1e-5)

    # A non-empty directory is refused before anything is downloaded; --force writes into it.
    (out / "model.safetensors").write_bytes(b"stale")
    refused = vlmc("export", "tiny", "2", "--out", str(out))
    assert refused.exit_code == 2 and "is not empty" in refused.output
    assert (out / "model.safetensors").read_bytes() == b"stale"
    forced = vlmc("export", "tiny", version.id, "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "model.safetensors").stat().st_size > 1000

    # The API's refusal, as every command reports one; nothing is written.
    not_ready = vlmc("export", "tiny", str(failed.number), "--out", str(tmp_path / "failed"))
    assert not_ready.exit_code == 1
    assert "error (409) version_failed" in not_ready.output
    assert not (tmp_path / "failed").exists()
    unknown = vlmc("export", "tiny", "9", "--out", str(tmp_path / "nine"))
    # The number goes to the API as typed; its answer is the command's.
    assert unknown.exit_code == 1 and "error (404) version_not_found" in unknown.output
