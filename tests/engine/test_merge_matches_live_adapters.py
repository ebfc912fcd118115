"""Merging an adapter gives the same function as running it live (within 1e-5)."""

from __future__ import annotations

import torch
from torch import nn

from catalogue.declarations import resolve_hyperparameters
from service.modelling.dual_encoder import DualEncoder
from workers.engine.examples import build_captioned_batch
from workers.engine.layers import RowRestrictedLoRA, SparseEntryLinear
from workers.engine.loss import class_level_contrastive_loss
from workers.engine.method import UpdateContext
from workers.engine.method_builder import create_method
from workers.engine.training_data import TrainingData


def test_row_restricted_lora_merge_is_exact() -> None:
    torch.manual_seed(0)
    base = nn.Linear(16, 12)
    lora = RowRestrictedLoRA(
        base,
        rank=4,
        alpha=8.0,
        generator=torch.Generator().manual_seed(1),
        rows=torch.tensor([2, 3, 7]),
    )
    with torch.no_grad():
        lora.lora_b.normal_()
    x = torch.randn(5, 16)
    live = lora(x)
    untouched = [r for r in range(12) if r not in (2, 3, 7)]
    assert torch.equal(
        live[:, untouched], nn.functional.linear(x, base.weight, base.bias)[:, untouched]
    )
    merged = lora.merge()
    torch.testing.assert_close(merged(x), live, atol=1e-5, rtol=0)


def test_sparse_entry_linear_merge_is_exact() -> None:
    torch.manual_seed(0)
    base = nn.Linear(8, 6)
    base.weight.requires_grad_(False)
    sparse = SparseEntryLinear(base, torch.tensor([0, 5, 17, 40]))
    with torch.no_grad():
        sparse.values.add_(1.5)
        sparse.bias.add_(0.25)
    x = torch.randn(3, 8)
    live = sparse(x)
    merged = sparse.merge()
    torch.testing.assert_close(merged(x), live, atol=1e-5, rtol=0)
    assert sparse.values.numel() == 4  # only the masked entries are state


def test_model_with_live_adapters_equals_merged_model(model: DualEncoder, examples: list) -> None:
    for method_name in ("lorsu", "lora", "spu", "codyra", "keeplora"):
        hp = resolve_hyperparameters(method_name, {"batch_size": 4}, model.architecture)
        batch = build_captioned_batch(examples, hp.template)
        captions = model.encode_texts(batch.captions)
        data = TrainingData(model.pixel_values(batch.images), torch.tensor(batch.targets))

        def loss_of(
            pixels: torch.Tensor,
            rows: torch.Tensor,
            captions: torch.Tensor = captions,
            data: TrainingData = data,
        ) -> torch.Tensor:
            return class_level_contrastive_loss(
                model.image_features(pixels), captions, data.targets[rows], 1.0
            )

        method = create_method(method_name, hp)
        method.prepare(UpdateContext(model, data, loss_of, torch.Generator().manual_seed(0)))
        with torch.no_grad():
            for parameter in method.trainable_parameters():
                parameter.add_(torch.randn_like(parameter) * 0.05)
            live = model.image_features(data.pixels)
        method.merge()
        with torch.no_grad():
            merged = model.image_features(data.pixels)
        torch.testing.assert_close(merged, live, atol=1e-5, rtol=0)
        assert not torch.allclose(live, live * 0)  # a real forward, not an empty one
