"""Request-content checks shared by every endpoint (stable 422 codes) and the length bounds
of every text the API accepts.

Text fields are bounded and may not carry control characters (NUL included) or unpaired
surrogates: they end up in database rows, log lines and tokenizers, and PostgreSQL refuses NUL
outright. Free text (a question, a rollback reason) may hold tabs and line breaks; names,
labels, paths and identifiers may not. Pydantic models use the ``Annotated`` types below; the
multipart fields a router reads itself go through :func:`clean_text` / :func:`check_characters`.
Both report ``invalid_characters``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from service.errors import InvalidInput

MAX_ID_LENGTH = 64
MAX_NAME_LENGTH = 200
MAX_LABEL_LENGTH = 200  # the ``label`` columns are VARCHAR(200)
MAX_PATH_LENGTH = 4096
MAX_TEXT_LENGTH = 4000
MAX_TEMPLATE_LENGTH = 1000
MAX_METHOD_LENGTH = 50
MAX_IDEMPOTENCY_KEY_LENGTH = 200
# Row ids (job events) are 64-bit integers in both databases: a larger cursor is refused.
MAX_ROW_ID = 2**63 - 1
# A base64 image within the default 10 MiB upload limit (the byte limit itself is a setting,
# checked after decoding: 413 image_too_large).
MAX_BASE64_LENGTH = 64 * 1024 * 1024

# Identifiers the service hands out (UUIDs) in path parameters and bodies.
ID_PATTERN = r"^[A-Za-z0-9_-]+$"
# JSON-schema form of the character rule (documentation and generated clients); the
# validators below are what enforces it.
# Invisible characters that change how text reads or make two texts that look the same
# differ: bidirectional controls (U+202E shows a label backwards) and zero-width or soft
# characters ("cat" + U+200B would be a second label "cat"). The zero-width joiners U+200C and
# U+200D stay allowed: emoji sequences and several scripts need them.
_INVISIBLE = r"\u00ad\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
SINGLE_LINE_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f" + _INVISIBLE + "]*$"
MULTILINE_PATTERN = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f" + _INVISIBLE + "]*$"
_ALLOWED_IN_MULTILINE = frozenset("\t\n\r")
_INVISIBLE_CHARACTERS = re.compile("[" + _INVISIBLE + "]")


def forbidden_character(value: str, multiline: bool = False) -> str | None:
    """The first control character, unpaired surrogate or invisible formatting character
    (bidirectional control, zero-width space, soft hyphen, ...) in ``value`` (None if
    clean)."""
    for character in value:
        category = unicodedata.category(character)
        if category == "Cs" or (
            category == "Cc" and not (multiline and character in _ALLOWED_IN_MULTILINE)
        ):
            return character
        if _INVISIBLE_CHARACTERS.match(character):
            return character
    return None


def _message(character: str) -> str:
    kind = "control" if unicodedata.category(character) in ("Cc", "Cs") else "invisible"
    return f"contains the {kind} character U+{ord(character):04X}"


def check_characters(value: str, field: str, multiline: bool = False) -> str:
    """``value`` unchanged, or 422 ``invalid_characters``."""
    character = forbidden_character(value, multiline)
    if character is not None:
        raise InvalidInput("invalid_characters", f"{field}: {_message(character)}")
    return value


def _single_line(value: str) -> str:
    character = forbidden_character(value)
    if character is not None:
        raise PydanticCustomError("invalid_characters", _message(character))
    return value


def _multiline(value: str) -> str:
    character = forbidden_character(value, multiline=True)
    if character is not None:
        raise PydanticCustomError("invalid_characters", _message(character))
    return value


def _text(max_length: int, min_length: int = 0, pattern: str = SINGLE_LINE_PATTERN) -> Any:
    return Field(
        min_length=min_length, max_length=max_length, json_schema_extra={"pattern": pattern}
    )


Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
Name = Annotated[str, _text(MAX_NAME_LENGTH, min_length=1), AfterValidator(_single_line)]
Label = Annotated[str, _text(MAX_LABEL_LENGTH), AfterValidator(_single_line)]
PathText = Annotated[str, _text(MAX_PATH_LENGTH, min_length=1), AfterValidator(_single_line)]
MethodName = Annotated[str, _text(MAX_METHOD_LENGTH, min_length=1), AfterValidator(_single_line)]
Template = Annotated[str, _text(MAX_TEMPLATE_LENGTH), AfterValidator(_single_line)]
FreeText = Annotated[
    str, _text(MAX_TEXT_LENGTH, pattern=MULTILINE_PATTERN), AfterValidator(_multiline)
]
Base64Image = Annotated[
    str,
    Field(max_length=MAX_BASE64_LENGTH, description="base64 (standard or url-safe) image bytes"),
]


def check_batch_size(count: int, max_examples: int) -> None:
    """422 ``too_many_examples`` above the per-request limit."""
    if count > max_examples:
        raise InvalidInput(
            "too_many_examples", f"{count} examples; at most {max_examples} per request"
        )


def clean_text(
    value: str | None, field: str, empty_code: str, max_length: int, multiline: bool = False
) -> str:
    """A stripped, non-empty text field (labels, questions, answers) or a 422."""
    text = (value or "").strip()
    if not text:
        raise InvalidInput(empty_code, f"{field}: must not be empty")
    if len(text) > max_length:
        raise InvalidInput("text_too_long", f"{field}: longer than {max_length} characters")
    return check_characters(text, field, multiline)


def check_identifier(value: str, field: str) -> str:
    """An identifier read from a multipart field: ``value``, or 422 ``invalid_identifier``."""
    if not 0 < len(value) <= MAX_ID_LENGTH or not re.fullmatch(ID_PATTERN, value):
        raise InvalidInput(
            "invalid_identifier",
            f"{field}: not an identifier (1-{MAX_ID_LENGTH} of A-Z a-z 0-9 _ -)",
        )
    return value
