"""How a label becomes the caption an image is matched against (training, evaluation, serving).

One home for the caption template, so classify, the update loss and TI/CC measure the same
sentences. Torch-free: the API and the method declarations import it.
"""

from __future__ import annotations

DEFAULT_CAPTION_TEMPLATE = "a photo of a {}."
LABEL_SLOT = "{}"


def caption_for_label(label: str, template: str = DEFAULT_CAPTION_TEMPLATE) -> str:
    """The caption a label is matched against."""
    return template.format(label)


def has_label_slot(template: str) -> bool:
    return LABEL_SLOT in template
