"""``GET /v1/models/{model_id}/versions/{version_id}/export``: a version as a standard
Hugging Face checkpoint, in a tar archive."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from service.api.deps import ResourceId, SessionDep, VersionRefPath
from service.auth.dependencies import ModelAdmin
from service.exports.service import export_version
from service.serving.dependencies import ServingDep

router = APIRouter(prefix="/v1/models", tags=["versions"])


@router.get(
    "/{model_id}/versions/{version_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "application/x-tar": {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "description": "a tar archive of one folder, <model>-v<number>/: "
                        "config.json, model.safetensors, the tokenizer and processor files "
                        "and a model card (README.md)",
                    }
                }
            }
        }
    },
)
def export(
    model_id: ResourceId,
    version_id: VersionRefPath,
    session: SessionDep,
    serving: ServingDep,
    _: ModelAdmin,
) -> StreamingResponse:
    """Download a ready version (by id or number) as a Hugging Face checkpoint that
    ``from_pretrained`` (transformers, vLLM, TGI) loads: the base checkpoint with the
    version's image encoder merged in (safetensors), its tokenizer and processor, and a model
    card.

    Needs an admin key: the archive is the model itself (an inference or corrections key
    may use the model, not take it away), and its licence may restrict redistribution."""
    exported = export_version(session, serving.cache, serving.settings, model_id, version_id)
    session.close()
    return StreamingResponse(
        exported.chunks(),
        media_type="application/x-tar",
        headers={
            "Content-Disposition": f'attachment; filename="{exported.file_name}"',
            "Content-Length": str(exported.archive.size),
        },
        # Also when the client goes away before the stream starts.
        background=BackgroundTask(exported.remove),
    )
