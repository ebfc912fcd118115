"""Snapshots and deltas are exact, hash-checked, and refuse tampering."""

from __future__ import annotations

import pytest
import torch

from service.modelling.snapshots import (
    SnapshotIntegrityError,
    apply_delta,
    deserialize_state,
    make_delta,
    read_metadata,
    serialize_state,
    state_sha256,
)


def _state() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "attn.q.weight": torch.randn(8, 6, generator=generator),
        "mlp.fc1.weight": torch.randn(12, 6, generator=generator),
        "norm.bias": torch.randn(6, generator=generator),
        "half": torch.randn(4, 4, generator=generator).to(torch.bfloat16),
    }


def test_hash_depends_on_bits_names_and_shapes() -> None:
    state = _state()
    base = state_sha256(state)
    assert base == state_sha256({k: v.clone() for k, v in reversed(state.items())})
    flipped = {k: v.clone() for k, v in state.items()}
    flipped["norm.bias"][0] = -flipped["norm.bias"][0]
    assert state_sha256(flipped) != base
    negative_zero = {**state, "norm.bias": torch.zeros(6)}
    positive_zero = {**state, "norm.bias": torch.zeros(6)}
    negative_zero["norm.bias"][0] = -0.0
    assert state_sha256(negative_zero) != state_sha256(positive_zero)
    reshaped = {**state, "norm.bias": state["norm.bias"].reshape(2, 3)}
    assert state_sha256(reshaped) != base


def test_delta_picks_rows_entries_or_full_and_round_trips_bit_exact() -> None:
    parent = _state()
    child = {k: v.clone() for k, v in parent.items()}
    child["attn.q.weight"][2:4] += 1.0  # two whole rows
    child["mlp.fc1.weight"].view(-1)[[3, 40]] = float("nan")  # two entries, NaN included
    child["norm.bias"] += 0.5  # everything
    delta = make_delta(parent, child)
    encodings = read_metadata(delta)["encodings"]
    assert '"attn.q.weight": "rows"' in encodings
    assert '"mlp.fc1.weight": "entries"' in encodings
    assert '"norm.bias": "full"' in encodings
    assert '"half"' not in encodings  # unchanged tensors are not stored
    rebuilt = apply_delta(parent, delta)
    assert state_sha256(rebuilt) == state_sha256(child)
    for name in child:
        assert rebuilt[name].view(torch.uint8).equal(child[name].view(torch.uint8))


def test_delta_refuses_wrong_parent_and_tampering() -> None:
    parent = _state()
    child = {k: v.clone() for k, v in parent.items()}
    child["attn.q.weight"][0] += 1
    delta = make_delta(parent, child)
    with pytest.raises(SnapshotIntegrityError, match="different parent"):
        apply_delta(child, delta)
    tampered = bytearray(delta)
    tampered[-1] ^= 0xFF  # flip bits inside the stored values
    with pytest.raises(SnapshotIntegrityError, match="hash"):
        apply_delta(parent, bytes(tampered))


def test_full_snapshot_round_trip_and_tamper_check() -> None:
    state = _state()
    blob = serialize_state(state, {"model": "m1"})
    assert read_metadata(blob)["model"] == "m1"
    assert state_sha256(deserialize_state(blob)) == state_sha256(state)
    tampered = bytearray(blob)
    tampered[-3] ^= 0x01
    with pytest.raises(SnapshotIntegrityError):
        deserialize_state(bytes(tampered))
    with pytest.raises(SnapshotIntegrityError):
        deserialize_state(b"not safetensors at all")
