"""Answer ids: every classify prediction and chat completion carries one.

An id names its model (``<prefix><model id>_<16 hex>``), so feedback on an answer that was
not kept can still say why: its model does not capture feedback (409
``feedback_capture_off``), rather than a bare 404. The ids fit the path parameter's pattern and
length (``service/validation.py``: at most 64 of ``A-Za-z0-9_-``); chat completions keep
OpenAI's ``chatcmpl-`` prefix.
"""

from __future__ import annotations

import secrets

from service.db.values import AnswerKind

PREFIXES = {AnswerKind.CLASSIFY: "ans-", AnswerKind.CHAT: "chatcmpl-"}


def new_answer_id(kind: AnswerKind, model_id: str) -> str:
    """A fresh id for an answer of ``model_id`` served by ``kind``'s endpoint."""
    return f"{PREFIXES[kind]}{model_id}_{secrets.token_hex(8)}"


def model_of_answer(answer_id: str) -> str | None:
    """The model id an answer id names (None: not an id this service hands out)."""
    for prefix in PREFIXES.values():
        if answer_id.startswith(prefix):
            model_id, separator, token = answer_id[len(prefix) :].rpartition("_")
            if separator and model_id and len(token) == 16:
                return model_id
    return None
