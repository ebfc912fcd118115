"""Request-content checks shared by every endpoint (stable 422 codes) and the length bounds
of every text the API accepts.

Text fields are normalised to Unicode NFC (a label typed with a combining accent and one
typed precomposed are one label), bounded, and may not carry control characters (NUL
included), unpaired surrogates or invisible formatting characters: they end up in database
rows, log lines and tokenizers, and PostgreSQL refuses NUL outright. Free text (a question, a
rollback reason) may hold tabs and line breaks; names, labels, paths and identifiers may not.
Pydantic models use the ``Annotated`` types below; the multipart fields a router reads itself
go through :func:`clean_text` / :func:`check_characters`. Both report ``invalid_characters``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from service.errors import InvalidInput

INVALID_CHARACTERS = "invalid_characters"
MAX_ID_LENGTH = 64
MAX_NAME_LENGTH = 200
MAX_LABEL_LENGTH = 200  # the ``label`` columns are VARCHAR(200)
MAX_PATH_LENGTH = 4096
MAX_TEXT_LENGTH = 4000
MAX_TEMPLATE_LENGTH = 1000
MAX_METHOD_LENGTH = 50
MAX_IDEMPOTENCY_KEY_LENGTH = 200
# The ceiling of every list a request carries (images, labels, examples, texts): the document
# states it; the service's own limits (VLMC_MAX_EXAMPLES_PER_BATCH, VLMC_MAX_LABELS_PER_REQUEST)
# are settings at or below it (422 ``too_many_...``).
MAX_ITEMS_PER_REQUEST = 4096
# Row ids (job events) are 64-bit integers in both databases: a larger cursor is refused.
MAX_ROW_ID = 2**63 - 1
# A base64 image within the default 10 MiB upload limit (the byte limit itself is a setting,
# checked after decoding: 413 image_too_large).
MAX_BASE64_LENGTH = 64 * 1024 * 1024

# Identifiers the service hands out (UUIDs) in path parameters and bodies.
ID_PATTERN = r"^[A-Za-z0-9_-]+$"
# The form of those identifiers (``service.db.base.new_id``: UUID4, lower case).
UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# A version is referenced by its id or by its number within its model (1 is the base
# checkpoint), wherever a version is named: ``service.versions.service.resolve_version``
# reads both. Numbers run 1 to MAX_VERSION_NUMBER; written as text (a path segment, a
# multipart field) in plain decimal, without sign or leading zeros.
MAX_VERSION_NUMBER = 999_999_999
VERSION_NUMBER_PATTERN = "^[1-9][0-9]{0,8}$"
# JSON-schema form of the character rule (documentation and generated clients); the
# validators below are what enforces it.
# Invisible characters that change how text reads or make two texts that look the same
# differ: bidirectional controls (U+202E shows a label backwards) and zero-width or soft
# characters ("cat" + U+200B would be a second label "cat"). The zero-width joiners U+200C and
# U+200D stay allowed: emoji sequences and several scripts need them.
_INVISIBLE = r"\u00ad\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_NOT_SINGLE_LINE = "\\x00-\\x1f\\x7f-\\x9f" + _INVISIBLE
_NOT_MULTILINE = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f" + _INVISIBLE
SINGLE_LINE_PATTERN = f"^[^{_NOT_SINGLE_LINE}]*$"
MULTILINE_PATTERN = f"^[^{_NOT_MULTILINE}]*$"
# The same with at least one character that is not white space: labels, answers, questions
# and texts are stripped, and an empty one is refused (``empty_label``, ...).
NONBLANK_SINGLE_LINE_PATTERN = (
    f"^[^{_NOT_SINGLE_LINE}]*[^\\s{_NOT_SINGLE_LINE}][^{_NOT_SINGLE_LINE}]*$"
)
NONBLANK_MULTILINE_PATTERN = f"^[^{_NOT_MULTILINE}]*[^\\s{_NOT_MULTILINE}][^{_NOT_MULTILINE}]*$"
# A caption template: single-line text with the label's slot "{}" (catalogue/captions.py).
TEMPLATE_PATTERN = f"^[^{_NOT_SINGLE_LINE}]*\\{{\\}}[^{_NOT_SINGLE_LINE}]*$"
# Base64 (standard or url-safe, padding optional) of whole bytes, after an optional
# ``data:...;base64,`` prefix: what ``service.api.uploads.decode_base64`` accepts.
BASE64_PATTERN = (
    "^(data:[^,]*,)?(([A-Za-z0-9+/_-]{4})+([A-Za-z0-9+/_-]{2}(==)?|[A-Za-z0-9+/_-]{3}=?)?"
    "|[A-Za-z0-9+/_-]{2}(==)?|[A-Za-z0-9+/_-]{3}=?)$"
)
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


def text_pattern(multiline: bool = False, nonblank: bool = False) -> str:
    """The JSON-schema pattern of a text field (see the patterns above)."""
    if nonblank:
        return NONBLANK_MULTILINE_PATTERN if multiline else NONBLANK_SINGLE_LINE_PATTERN
    return MULTILINE_PATTERN if multiline else SINGLE_LINE_PATTERN


def normalised(value: str) -> str:
    """``value`` in Unicode NFC, the one form every stored text takes."""
    return unicodedata.normalize("NFC", value)


def check_characters(value: str, field: str, multiline: bool = False) -> str:
    """``value`` in NFC, or 422 ``invalid_characters``."""
    character = forbidden_character(value, multiline)
    if character is not None:
        raise InvalidInput(INVALID_CHARACTERS, f"{field}: {_message(character)}")
    return normalised(value)


def _checked_text(max_length: int, multiline: bool) -> AfterValidator:
    def check(value: str) -> str:
        character = forbidden_character(value, multiline)
        if character is not None:
            raise PydanticCustomError(INVALID_CHARACTERS, _message(character))
        value = normalised(value)
        if len(value) > max_length:  # NFC very rarely lengthens a text
            raise PydanticCustomError(
                "string_too_long", "at most {max_length} characters", {"max_length": max_length}
            )
        return value

    return AfterValidator(check)


def _text(
    max_length: int,
    min_length: int = 0,
    multiline: bool = False,
    pattern: str | None = None,
    nonblank: bool = False,
) -> tuple[Any, AfterValidator]:
    """``nonblank``: documented as holding something besides white space, and checked by the
    service after stripping (``clean_text``: ``empty_label``, ``empty_question``, ...), so a
    blank value gets the same code in a JSON body as in a multipart one."""
    if pattern is None or nonblank:
        pattern = text_pattern(multiline, nonblank)
    if nonblank:
        field = Field(max_length=max_length, json_schema_extra={"pattern": pattern, "minLength": 1})
    else:
        field = Field(
            min_length=min_length, max_length=max_length, json_schema_extra={"pattern": pattern}
        )
    return field, _checked_text(max_length, multiline)


Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
Name = Annotated[str, *_text(MAX_NAME_LENGTH, min_length=1)]
Label = Annotated[str, *_text(MAX_LABEL_LENGTH, nonblank=True)]
PathText = Annotated[str, *_text(MAX_PATH_LENGTH, min_length=1)]
MethodName = Annotated[str, *_text(MAX_METHOD_LENGTH, min_length=1)]
# The label slot is the service's check (422 ``invalid_template``, as in a multipart form);
# the document states it as the pattern.
Template = Annotated[str, *_text(MAX_TEMPLATE_LENGTH, pattern=TEMPLATE_PATTERN)]
# A question or a text to embed: not blank.
FreeText = Annotated[str, *_text(MAX_TEXT_LENGTH, multiline=True, nonblank=True)]
# A note that may be empty (a rollback's reason).
Note = Annotated[str, *_text(MAX_TEXT_LENGTH, multiline=True)]


_VERSION_ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "uuid",
    "pattern": UUID_PATTERN,
    "maxLength": 36,
    "description": "the version's id",
}
_VERSION_REF_DESCRIPTION = (
    "a version of the model: its id, or its number (1 is the base checkpoint)"
)
# A version reference in a JSON body: the id, or the number as a JSON integer.
VERSION_REF_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        _VERSION_ID_SCHEMA,
        {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_VERSION_NUMBER,
            "description": "the version's number within its model",
        },
    ],
    "description": _VERSION_REF_DESCRIPTION,
}
# A version reference written as text (a path segment, a multipart field): the id, or the
# number in decimal (``/versions/3``).
VERSION_REF_TEXT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        _VERSION_ID_SCHEMA,
        {
            "type": "string",
            "pattern": VERSION_NUMBER_PATTERN,
            "maxLength": len(str(MAX_VERSION_NUMBER)),
            "description": "the version's number within its model, in decimal",
        },
    ],
    "description": _VERSION_REF_DESCRIPTION,
}
INTEGER_TEXT = re.compile(r"-?[0-9]+")


def _json_version_ref(value: Any) -> int | str:
    """A version reference as JSON gives it: an integer is a number, a string an id. A number
    written as a string ("3") is refused: it would read as an id in one place and a number in
    another."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():  # 3.0 is an integer in JSON Schema
        return int(value)
    if isinstance(value, str) and INTEGER_TEXT.fullmatch(value):
        raise PydanticCustomError(
            "version_number_as_string",
            "a version number is a JSON integer ({number}), not a string",
            {"number": value},
        )
    if (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and re.fullmatch(ID_PATTERN, value)
    ):
        return value
    raise PydanticCustomError(
        "version_reference", "a version's id (a string) or its number (an integer from 1)"
    )


# A version reference in a JSON body (``int``: a number, ``str``: an id). Bounds and the
# lookup are ``resolve_version``'s (422 ``invalid_version_number``, 404
# ``version_not_found``), the same for every form.
VersionRef = Annotated[
    int | str, PlainValidator(_json_version_ref), WithJsonSchema(VERSION_REF_JSON_SCHEMA)
]


def _base64_within_bound(value: str) -> str:
    # The same condition as an oversized multipart file, so the same answer: 413
    # ``image_too_large`` (service/api/errors.py), not a generic validation error.
    if len(value) > MAX_BASE64_LENGTH:
        raise PydanticCustomError(
            "image_too_large",
            "{length} base64 characters is over the limit of {limit}",
            {"length": len(value), "limit": MAX_BASE64_LENGTH},
        )
    return value


Base64Image = Annotated[
    str,
    Field(
        description="base64 (standard or url-safe) image bytes",
        json_schema_extra={
            "minLength": 2,
            "maxLength": MAX_BASE64_LENGTH,
            "pattern": BASE64_PATTERN,
        },
    ),
    AfterValidator(_base64_within_bound),
]


def check_batch_size(count: int, max_items: int, items: str = "examples") -> None:
    """422 ``too_many_<items>`` (examples, images, texts) above the per-request limit."""
    if count > max_items:
        raise InvalidInput(f"too_many_{items}", f"{count} {items}; at most {max_items} per request")


def clean_text(
    value: str | None, field: str, empty_code: str, max_length: int, multiline: bool = False
) -> str:
    """A stripped, NFC-normalised, non-empty text field (labels, questions, answers) or a
    422."""
    text = check_characters((value or "").strip(), field, multiline)
    if not text:
        raise InvalidInput(empty_code, f"{field}: must not be empty")
    if len(text) > max_length:
        raise InvalidInput("text_too_long", f"{field}: longer than {max_length} characters")
    return text


def check_identifier(value: str, field: str) -> str:
    """An identifier read from a multipart field: ``value``, or 422 ``invalid_identifier``."""
    if not 0 < len(value) <= MAX_ID_LENGTH or not re.fullmatch(ID_PATTERN, value):
        raise InvalidInput(
            "invalid_identifier",
            f"{field}: not an identifier (1-{MAX_ID_LENGTH} of A-Z a-z 0-9 _ -)",
        )
    return value


def _not_a_boolean(value: Any) -> Any:
    # JSON's true is not the number 1 (pydantic's lax int would read it so); 270.0 is an
    # integer in JSON Schema's sense and stays accepted.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer, not a boolean")
    return value


# An integer field of a JSON body: a whole number, never a boolean.
JsonInteger = Annotated[int, BeforeValidator(_not_a_boolean)]
