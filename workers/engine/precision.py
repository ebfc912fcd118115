"""Mixed precision of an update's forward and backward passes (CUDA only).

``mixed_precision`` is one of :data:`MIXED_PRECISION_MODES`:

- ``"off"``: everything in the weights' dtype (float32);
- ``"bf16"``: the image encoder's forward passes that train (the task loss, the importance
  pass, the anchor term) run under ``torch.autocast("cuda", dtype=torch.bfloat16)``; the
  losses themselves are computed in float32;
- ``"auto"``: ``"bf16"`` on a CUDA device that supports bfloat16, ``"off"`` elsewhere.

On CPU every mode means ``"off"``: CPU updates keep their meaning (and their bit-exact
repeatability). Autocast never changes a parameter's dtype: trainable parameters, their
optimizer state, gradients (accumulated in the parameter's dtype) and the merged weights stay
float32, so a version's snapshot is the same kind of tensor whichever device trained it.
Evaluations without gradients (the early-stop checks, the anchors' drift) stay float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

MIXED_PRECISION_MODES = ("auto", "bf16", "off")


def autocast_dtype(mode: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype ``mode`` resolves to on ``device`` (None: no autocast)."""
    if mode not in MIXED_PRECISION_MODES:
        raise ValueError(f"mixed precision {mode!r} is not one of {MIXED_PRECISION_MODES}")
    device = torch.device(device)
    if mode == "off" or device.type != "cuda":
        return None
    if mode == "auto" and not torch.cuda.is_bf16_supported():
        return None
    return torch.bfloat16


@contextlib.contextmanager
def autocast_to(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast(device.type, dtype)`` when ``dtype`` is given, else nothing."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def precision_name(dtype: torch.dtype | None) -> str:
    """What an update's report records: ``"bf16"`` or ``"off"``."""
    return "off" if dtype is None else {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
