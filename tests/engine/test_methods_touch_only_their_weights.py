"""Each method changes exactly the weights it claims to, and nothing outside the image encoder."""

from __future__ import annotations

import math

import torch

from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from tests.model_fixtures import noise_examples
from workers.engine.update import run_update

FAST = {"learning_rate": 1e-2, "epochs": 2, "batch_size": 4}


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


def _changed_rows(before: torch.Tensor, after: torch.Tensor) -> set[int]:
    return set((before != after).any(dim=1).nonzero().flatten().tolist())


def _text_state(model: DualEncoder) -> dict[str, torch.Tensor]:
    prefixes = model.image_encoder_prefixes()
    return {k: v.clone() for k, v in model.model.state_dict().items() if not k.startswith(prefixes)}


def _layer(name: str, index: int) -> str:
    return f"vision_model.encoder.layers.{index}.{name}"


def test_lorsu_changes_exactly_the_selected_head_rows_and_masked_fc1_entries(
    model: DualEncoder, examples: list[ImageExample]
) -> None:
    before = model.image_encoder_state()
    text_before = _text_state(model)
    report = run_update(
        model, examples, method="lorsu", hyperparameters={**FAST, "top_k_heads": 2, "sparsity": 0.1}
    ).report
    after = model.image_encoder_state()

    head_dim = 64 // model.num_heads
    heads = report.details["heads_per_layer"]
    assert [len(h) for h in heads] == [2, 2]
    allowed = set()
    for index, layer_heads in enumerate(heads):
        expected_rows = {h * head_dim + r for h in layer_heads for r in range(head_dim)}
        for projection in ("q_proj", "k_proj", "v_proj"):
            name = _layer(f"self_attn.{projection}.weight", index)
            assert _changed_rows(before[name], after[name]) == expected_rows, name
            allowed.add(name)
        fc1 = _layer("mlp.fc1.weight", index)
        changed_entries = int((before[fc1] != after[fc1]).sum())
        assert 0 < changed_entries <= report.details["fc1_entries_per_layer"][index]
        assert report.details["fc1_entries_per_layer"][index] == math.ceil(
            0.1 * before[fc1].numel()
        )
        allowed |= {fc1, _layer("mlp.fc1.bias", index)}
    assert _changed(before, after) <= allowed
    text_after = _text_state(model)
    assert all(torch.equal(v, text_after[k]) for k, v in text_before.items())


def test_lorsu_all_heads_touches_every_head(model: DualEncoder, examples: list) -> None:
    before = model.image_encoder_state()
    report = run_update(model, examples, method="lorsu-aah", hyperparameters=FAST).report
    after = model.image_encoder_state()
    assert report.details["heads_per_layer"] == [[0, 1, 2, 3], [0, 1, 2, 3]]
    for index in range(2):
        name = _layer("self_attn.q_proj.weight", index)
        assert _changed_rows(before[name], after[name]) == set(range(64))


def test_lorsu_rand_picks_heads_independent_of_the_gradient(tiny_model_dir) -> None:
    from service.modelling.loading import load_dual_encoder

    def heads(method: str, labels: list[str], seed: int, example_seed: int) -> list[list[int]]:
        model = load_dual_encoder(tiny_model_dir)
        batch = noise_examples(labels, seed=example_seed)
        return run_update(
            model, batch, method=method, hyperparameters=FAST, seed=seed
        ).report.details["heads_per_layer"]

    # Very different batches (so different gradients), same seed: the same random heads.
    first = heads("lorsu-rand", ["boot", "bag"] * 3, seed=5, example_seed=1)
    second = heads("lorsu-rand", ["cat", "dog", "frog"] * 2, seed=5, example_seed=2)
    assert first == second
    # Different seeds draw different heads somewhere (a fixed choice would fail this).
    draws = {
        str(heads("lorsu-rand", ["boot", "bag"] * 3, seed=s, example_seed=1)) for s in range(6)
    }
    assert len(draws) > 1


def test_spu_touches_only_fc1(model: DualEncoder, examples: list) -> None:
    before = model.image_encoder_state()
    run_update(model, examples, method="spu", hyperparameters=FAST)
    changed = _changed(before, model.image_encoder_state())
    assert changed
    assert all(".mlp.fc1." in name for name in changed)


def test_lora_touches_every_linear_weight_but_no_bias(model: DualEncoder, examples: list) -> None:
    before = model.image_encoder_state()
    run_update(model, examples, method="lora", hyperparameters=FAST)
    changed = _changed(before, model.image_encoder_state())
    linears = {
        _layer(f"{part}.weight", i)
        for i in range(2)
        for part in (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.out_proj",
            "mlp.fc1",
            "mlp.fc2",
        )
    }
    assert changed == linears


def test_full_ft_touches_everything_in_the_image_encoder(
    model: DualEncoder, examples: list
) -> None:
    before = model.image_encoder_state()
    text_before = _text_state(model)
    run_update(model, examples, method="full-ft", hyperparameters=FAST)
    changed = _changed(before, model.image_encoder_state())
    assert changed == set(before)
    text_after = _text_state(model)
    assert all(torch.equal(v, text_after[k]) for k, v in text_before.items())


def test_every_method_leaves_the_original_architecture(model: DualEncoder, examples: list) -> None:
    keys = list(model.model.state_dict())
    module_types = [type(m).__name__ for m in model.model.modules()]
    for method in ("lorsu", "lora", "spu"):
        run_update(model, examples, method=method, hyperparameters=FAST)
        assert list(model.model.state_dict()) == keys
        assert [type(m).__name__ for m in model.model.modules()] == module_types
        assert not any(p.requires_grad for p in model.model.parameters())


def test_optimizer_state_holds_only_the_trainable_entries(
    model: DualEncoder, examples: list
) -> None:
    masked = sum(math.ceil(0.1 * block.fc1.weight.numel()) for block in model.blocks)
    reports = {
        method: run_update(model, examples, method=method, hyperparameters=FAST).report
        for method in ("lorsu", "spu", "full-ft")
    }
    for report in reports.values():
        # AdamW keeps two float32 moments per trainable value (+ a scalar step per tensor).
        moments = 2 * 4 * report.trainable_parameters
        assert moments <= report.optimizer_state_bytes <= moments + 4096
    spu = reports["spu"]
    fc1_biases = sum(block.fc1.bias.numel() for block in model.blocks)
    assert spu.trainable_parameters == masked + fc1_biases
    assert reports["lorsu"].optimizer_state_bytes < 0.6 * reports["full-ft"].optimizer_state_bytes


def test_lorsu_defaults_scale_heads_with_the_head_count(model: DualEncoder, examples: list) -> None:
    from catalogue.methods.lorsu import default_head_count

    assert [default_head_count(h) for h in (3, 4, 8, 12, 16)] == [1, 1, 2, 3, 4]
    report = run_update(model, examples, method="lorsu", hyperparameters=FAST).report
    assert [len(h) for h in report.details["heads_per_layer"]] == [1, 1]
    fc1 = model.blocks[0].fc1.weight.numel()
    assert report.details["fc1_entries_per_layer"] == [math.ceil(0.1 * fc1)] * 2


def test_lorsu_relative_weighs_importance_against_the_anchors(tiny_model_dir) -> None:
    """Without anchors it is LoRSU, bit for bit; with anchors its heads and fc1 entries are
    ranked by importance for the correction per unit of importance for the anchors."""
    from service.modelling.loading import load_dual_encoder
    from workers.engine.methods.lorsu import relative

    batch = noise_examples(["boot", "bag"] * 3, seed=1)
    anchors = noise_examples(["cat", "dog", "frog", "bird"] * 4, seed=7)

    def update(method: str, with_anchors: bool) -> tuple[dict, dict]:
        model = load_dual_encoder(tiny_model_dir)
        hyperparameters = {
            **FAST,
            "top_k_heads": 1,
            "anchor_distillation": 10.0,
            "anchor_reference": "parent",
        }
        report = run_update(
            model,
            batch,
            method=method,
            hyperparameters=hyperparameters,
            seed=3,
            anchors=anchors if with_anchors else (),
        ).report
        return report.details, model.image_encoder_state()

    plain, plain_state = update("lorsu", with_anchors=False)
    same, same_state = update("lorsu-relative", with_anchors=False)
    assert plain == same
    assert all(torch.equal(plain_state[name], same_state[name]) for name in plain_state)

    start = load_dual_encoder(tiny_model_dir).image_encoder_state()
    anchored, anchored_state = update("lorsu", with_anchors=True)
    weighed, weighed_state = update("lorsu-relative", with_anchors=True)
    assert "relative to the anchors" in weighed["importance"]
    assert "relative" not in anchored["importance"]
    # Other fc1 entries train (the same number of them).
    fc1 = _layer("mlp.fc1.weight", 0)
    assert anchored["fc1_entries_per_layer"] == weighed["fc1_entries_per_layer"]
    moved_anchored = anchored_state[fc1] != start[fc1]
    moved_weighed = weighed_state[fc1] != start[fc1]
    assert not torch.equal(moved_anchored, moved_weighed)
    # The ratio itself: an entry the anchors need ranks below one they do not.
    scores = relative(torch.tensor([1.0, 1.0]), torch.tensor([10.0, 0.1]))
    assert scores[1] > scores[0]
