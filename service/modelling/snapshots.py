"""Encoder snapshots: safetensors serialisation, content hashes and exact deltas.

A version stores the image-encoder state either whole or as a delta from its parent. A delta
keeps only what changed, in the cheapest exact form per tensor: whole rows (head-restricted
LoRA merges), single entries (a sparse fc1 mask) or the full tensor. Applying a delta copies
stored values, so the rebuilt state is bit-for-bit the child, and both ends are hash-checked.
No pickle is involved anywhere: safetensors only.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping, Sequence

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

State = dict[str, torch.Tensor]

DELTA_FORMAT = "vlmc-delta/1"
FULL_FORMAT = "vlmc-full/1"
_ROWS = "::rows"
_ROW_VALUES = "::row_values"
_INDEX = "::index"
_VALUES = "::values"
_FULL = "::full"
_BIT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


class SnapshotIntegrityError(Exception):
    """A snapshot or delta does not match the hash it claims, or its parent."""


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        header = f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode()
        digest.update(struct.pack("<Q", len(header)))
        digest.update(header)
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def serialize_state(
    state: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> bytes:
    """A whole state as safetensors bytes, with its hash in the metadata."""
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state.items()}
    meta = {"format": FULL_FORMAT, "sha256": state_sha256(tensors), **(metadata or {})}
    return safetensors_save(tensors, metadata=meta)


def read_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` block of safetensors bytes (without loading tensors)."""
    if len(data) < 8:
        raise SnapshotIntegrityError("not a safetensors blob: too short")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > len(data) - 8:
        raise SnapshotIntegrityError("not a safetensors blob: header size out of range")
    try:
        header = json.loads(data[8 : 8 + header_size])
    except ValueError as error:
        raise SnapshotIntegrityError(f"not a safetensors blob: {error}") from error
    return dict(header.get("__metadata__") or {})


def deserialize_state(data: bytes) -> State:
    """Load a whole state and check it against the hash stored with it."""
    metadata = read_metadata(data)
    if metadata.get("format") != FULL_FORMAT:
        raise SnapshotIntegrityError(f"expected a {FULL_FORMAT} blob, got {metadata.get('format')}")
    state = dict(safetensors_load(data))
    actual = state_sha256(state)
    if actual != metadata.get("sha256"):
        raise SnapshotIntegrityError(
            f"snapshot hash mismatch: stored {metadata.get('sha256')}, got {actual}"
        )
    return state


def _changed_mask(parent: torch.Tensor, child: torch.Tensor) -> torch.Tensor:
    # Compare bit patterns, not values: NaN != NaN and -0.0 == 0.0 would break exactness.
    bits = _BIT_VIEW[parent.element_size()]
    return parent.contiguous().view(bits) != child.contiguous().view(bits)


def make_delta(parent: Mapping[str, torch.Tensor], child: Mapping[str, torch.Tensor]) -> bytes:
    """Exact delta from ``parent`` to ``child`` (same keys, shapes and dtypes) as safetensors."""
    if set(parent) != set(child):
        raise ValueError("parent and child states have different tensor names")
    stored: State = {}
    encodings: dict[str, str] = {}
    for name in sorted(child):
        old = parent[name].detach().to("cpu")
        new = child[name].detach().to("cpu").contiguous()
        if old.shape != new.shape or old.dtype != new.dtype:
            raise ValueError(f"{name}: shape or dtype differs between parent and child")
        mask = _changed_mask(old, new)
        if not bool(mask.any()):
            continue
        item = new.element_size()
        entries = mask.reshape(-1).nonzero().squeeze(1)
        index_dtype = torch.int32 if new.numel() < 2**31 else torch.int64
        index_size = 4 if index_dtype is torch.int32 else 8
        costs = {"full": new.numel() * item, "entries": entries.numel() * (item + index_size)}
        if new.dim() >= 2:
            rows = mask.reshape(new.shape[0], -1).any(dim=1).nonzero().squeeze(1)
            costs["rows"] = rows.numel() * (new[0].numel() * item + 8)
        encoding = min(costs, key=costs.__getitem__)
        encodings[name] = encoding
        if encoding == "full":
            stored[name + _FULL] = new
        elif encoding == "rows":
            stored[name + _ROWS] = rows.to(torch.int64)
            stored[name + _ROW_VALUES] = new[rows].contiguous()
        else:
            stored[name + _INDEX] = entries.to(index_dtype)
            stored[name + _VALUES] = new.reshape(-1)[entries].contiguous()
    metadata = {
        "format": DELTA_FORMAT,
        "parent_sha256": state_sha256(parent),
        "sha256": state_sha256(child),
        "encodings": json.dumps(encodings, sort_keys=True),
    }
    return safetensors_save(stored, metadata=metadata)


def apply_delta(parent: Mapping[str, torch.Tensor], delta: bytes) -> State:
    """Rebuild the child state from ``parent`` and a delta, checking both hashes."""
    metadata = _delta_metadata(delta)
    if state_sha256(parent) != metadata.get("parent_sha256"):
        raise SnapshotIntegrityError("delta was made against a different parent state")
    child: State = {name: tensor.detach().to("cpu").clone() for name, tensor in parent.items()}
    _apply_in_place(child, delta, metadata)
    actual = state_sha256(child)
    if actual != metadata.get("sha256"):
        raise SnapshotIntegrityError(f"rebuilt state hash {actual} != {metadata.get('sha256')}")
    return child


def replay_deltas(
    start: Mapping[str, torch.Tensor], start_sha256: str, deltas: Sequence[bytes]
) -> State:
    """Apply a chain of deltas to ``start`` (whose hash the caller has checked) and verify
    the end state once.

    Each delta names the state it was made against and the state it produces; the chain is
    checked link by link on those names (no tensor hashing), the tensors are updated in one
    copy of ``start``, and the end state is hashed against the last delta's ``sha256``. Equal
    end hashes mean the end state is bit-for-bit the one the last delta was made for, so the
    per-step hashing of :func:`apply_delta` is not needed for exactness; it is what the caller
    uses to find the broken step when this raises.
    """
    state: State = {name: tensor.detach().to("cpu").clone() for name, tensor in start.items()}
    expected = start_sha256
    for position, delta in enumerate(deltas):
        metadata = _delta_metadata(delta)
        if metadata.get("parent_sha256") != expected:
            raise SnapshotIntegrityError(f"delta {position} was made against another state")
        _apply_in_place(state, delta, metadata)
        expected = metadata["sha256"]
    actual = state_sha256(state)
    if actual != expected:
        raise SnapshotIntegrityError(f"replayed state hash {actual} != {expected}")
    return state


def _delta_metadata(delta: bytes) -> dict[str, str]:
    metadata = read_metadata(delta)
    if metadata.get("format") != DELTA_FORMAT:
        raise SnapshotIntegrityError(
            f"expected a {DELTA_FORMAT} blob, got {metadata.get('format')}"
        )
    return metadata


def _apply_in_place(state: State, delta: bytes, metadata: Mapping[str, str]) -> None:
    stored = safetensors_load(delta)
    for name, encoding in json.loads(metadata["encodings"]).items():
        if name not in state:
            raise SnapshotIntegrityError(f"delta names an unknown tensor {name}")
        target = state[name]
        if encoding == "full":
            target.copy_(stored[name + _FULL])
        elif encoding == "rows":
            target[stored[name + _ROWS]] = stored[name + _ROW_VALUES]
        elif encoding == "entries":
            target.view(-1)[stored[name + _INDEX].to(torch.int64)] = stored[name + _VALUES]
        else:
            raise SnapshotIntegrityError(f"unknown delta encoding {encoding!r} for {name}")


def delta_sha256(delta: bytes) -> str:
    """The content hash of the state a delta produces (read from its metadata)."""
    return read_metadata(delta)["sha256"]
