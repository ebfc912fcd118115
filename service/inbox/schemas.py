"""Request bodies of the inbox (items are ``service.answers.schemas.InboxItemOut``)."""

from __future__ import annotations

from pydantic import Field

from service.corrections.schemas import CorrectionOptions
from service.validation import MAX_ITEMS_PER_REQUEST, Identifier


class InboxCorrectionIn(CorrectionOptions):
    """Body of ``POST /v1/models/{model_id}/inbox/corrections``: open items, and the options
    of ``POST /v1/models/{model_id}/corrections`` (method, hyperparameters, seed, ...)."""

    item_ids: list[Identifier] = Field(
        min_length=1,
        max_length=MAX_ITEMS_PER_REQUEST,
        description="open inbox items (answer ids) to make the correction's examples of",
    )
