"""Small request-content checks shared by every upload endpoint (stable 422 codes)."""

from __future__ import annotations

from service.errors import InvalidInput


def check_batch_size(count: int, max_examples: int) -> None:
    """422 ``too_many_examples`` above the per-request limit."""
    if count > max_examples:
        raise InvalidInput(
            "too_many_examples", f"{count} examples; at most {max_examples} per request"
        )


def clean_text(value: str | None, field: str, empty_code: str, max_length: int) -> str:
    """A stripped, non-empty text field (labels, questions, answers) or a 422."""
    text = (value or "").strip()
    if not text:
        raise InvalidInput(empty_code, f"{field}: must not be empty")
    if len(text) > max_length:
        raise InvalidInput("text_too_long", f"{field}: longer than {max_length} characters")
    return text
