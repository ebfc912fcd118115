"""Class-level CLIP contrastive loss.

Each image is scored against the text embeddings of all distinct captions (not against the
other images' captions one by one), so two images of the same class are never pushed apart
as false negatives. The text-to-image direction uses a uniform target over all images of a
caption for the same reason.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def class_level_contrastive_loss(
    image_features: torch.Tensor,
    caption_embeddings: torch.Tensor,
    targets: torch.Tensor,
    logit_scale: float | torch.Tensor,
    excluded: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric loss: image->caption cross-entropy + caption->image soft cross-entropy.

    ``image_features``: (B, D) unnormalised; ``caption_embeddings``: (C, D) L2-normalised;
    ``targets``: (B,) caption index of each image; ``excluded``: (B, C) True where a caption
    must not act as a negative for an image (it states the image's right answer too).
    """
    image_embeddings = F.normalize(image_features, dim=-1)
    logits = logit_scale * image_embeddings @ caption_embeddings.T
    if excluded is not None:
        logits = logits.masked_fill(excluded, float("-inf"))
    image_to_text = F.cross_entropy(logits, targets)
    present = torch.unique(targets)
    # For each caption present in the batch: a distribution over the batch's images.
    membership = (targets.unsqueeze(0) == present.unsqueeze(1)).to(logits.dtype)
    soft_targets = membership / membership.sum(dim=1, keepdim=True)
    text_logits = logits.T[present]
    # Excluded pairs have -inf logits and zero target mass: leave them out of the sum
    # (0 * -inf would be nan).
    log_probabilities = text_logits.log_softmax(dim=1)
    weighted = torch.where(soft_targets > 0, soft_targets * log_probabilities, 0.0)
    text_to_image = -weighted.sum(dim=1).mean()
    return 0.5 * (image_to_text + text_to_image)
