"""What an update trains towards: the training objective and, for a VLM, its answer anchors.

- ``clip``: the class-level contrastive loss between image embeddings and caption embeddings
  (the paper's default; what a dual encoder is served with).
- ``answer``: the language model's next-token cross-entropy on the right answer's tokens,
  given the image and the question, back-propagated through the frozen projector and language
  model into the vision tower (the paper's perplexity variant). Only a generative (llava)
  model has one. It reaches what the VLM reads; the CLIP loss does not (bench/results/vlm).
- ``clip+answer``: both, each with its weight.

Torch-free: the API resolves and checks a job's objective before anything is queued.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

# What the anchor terms' distillation holds the anchors to: the version a job trains from, or
# the model's base checkpoint.
AnchorReference = Literal["parent", "base"]


class TrainingObjective(StrEnum):
    CLIP = "clip"
    ANSWER = "answer"
    CLIP_AND_ANSWER = "clip+answer"

    @property
    def trains_clip(self) -> bool:
        return self is not TrainingObjective.ANSWER

    @property
    def trains_answers(self) -> bool:
        return self is not TrainingObjective.CLIP


def default_objective(generative: bool) -> TrainingObjective:
    """A VLM is corrected through its answers (the CLIP loss alone moves none of them on the
    stand-in: bench/results/vlm/findings.md); a dual encoder through the CLIP loss."""
    return TrainingObjective.ANSWER if generative else TrainingObjective.CLIP


# Default weights of the answer-space anchor terms of a llava model (a dual encoder has none),
# chosen on the VLM scenario's validation split (the never-corrected concepts corrected instead,
# validation renderings scored; bench/results/vlm/findings.md, "Choosing the defaults"): the
# largest answer gain whose control answers stay within -1 point after five sessions.
class VlmAnchorDefaults:
    # 1 - cos between each anchor patch token the language model reads and the parent's. 1000:
    # after five sessions LoRSU's corrected "what" answers +3.6 points, control answers -0.6;
    # 300 learned +4.8 for -5.1 (and looked safe over two sessions: -0.2); 100 or less lost 2
    # to 18 control points within two sessions.
    read_distillation: float = 1000.0
    # Teacher-forced KL of the language model's next-token distribution on the anchors'
    # questions and answers, against the parent version. Off: beside the read distillation it
    # changed neither side by more than a point (weight 1 at 300: -0.1 against -0.2) and it
    # costs a language-model pass over the anchors every step (bench/results/cost.md).
    answer_kl: float = 0.0
    # The language model's loss on the anchors' own right answers. Off: it pulls the anchors'
    # answers toward labels the base VLM was never taught (Fashion-MNIST, textures) and costs
    # as much as the KL.
    answer_rehearsal: float = 0.0
    # What the anchors are held to, and whether earlier corrections are replayed: each parent,
    # no replay, as these weights were chosen (a llava model's question/answer corrections have
    # no labels to replay; the base reference was measured at distillation 300 only: +4.0 for
    # -0.7, the same point as the parent at 1000).
    anchor_reference: AnchorReference = "parent"
    anchor_replay: bool = False
