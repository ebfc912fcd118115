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
) -> torch.Tensor:
    """Symmetric loss: image->caption cross-entropy + caption->image soft cross-entropy.

    ``image_features``: (B, D) unnormalised; ``caption_embeddings``: (C, D) L2-normalised;
    ``targets``: (B,) caption index of each image.
    """
    image_embeddings = F.normalize(image_features, dim=-1)
    logits = logit_scale * image_embeddings @ caption_embeddings.T
    image_to_text = F.cross_entropy(logits, targets)
    present = torch.unique(targets)
    # For each caption present in the batch: a distribution over the batch's images.
    membership = (targets.unsqueeze(0) == present.unsqueeze(1)).to(logits.dtype)
    soft_targets = membership / membership.sum(dim=1, keepdim=True)
    text_logits = logits.T[present]
    text_to_image = -(soft_targets * text_logits.log_softmax(dim=1)).sum(dim=1).mean()
    return 0.5 * (image_to_text + text_to_image)
