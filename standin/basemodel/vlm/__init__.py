"""The stand-in VLM: a LLaVA model around the base model's image tower, trained here.

The vision tower is the committed base model's image tower (frozen); a projector and a small
Llama language model are trained here on templated questions about the base model's emoji
concepts (``questions``). ``python -m standin.basemodel.vlm build`` trains it and writes the
release (``release/``: trained weights, tokenizer, build facts, card);
``python -m standin.basemodel.vlm materialise OUT_DIR`` assembles a loadable LLaVA directory
from the release and the base model (:func:`materialise_vlm_release`).
"""

from standin.basemodel.vlm.release import RELEASE_DIR, materialise_vlm_release

__all__ = ["RELEASE_DIR", "materialise_vlm_release"]
