"""Each method is declared once: the API's validation and the engine both read the catalogue,
which the API can import without torch, and a new method needs no edit anywhere else."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from pydantic import Field
from torch import nn

import catalogue.declarations as method_catalogue
from catalogue.architecture import VisionArchitecture
from catalogue.declarations import (
    MethodDeclaration,
    declarations,
    resolve_hyperparameters,
    stored_hyperparameters,
)
from catalogue.hyperparameters import CommonHyperparameters, HyperparameterError
from service.modelling.dual_encoder import DualEncoder
from tests.model_fixtures import noise_examples
from workers.engine.method import UpdateContext, UpdateMethod
from workers.engine.method_builder import implementation_of
from workers.engine.update import run_update

EIGHT_HEADS = VisionArchitecture(num_layers=4, num_heads=8, hidden_size=64)


def test_every_declaration_names_an_update_method_and_the_paper_methods_are_there() -> None:
    found = declarations()
    assert next(iter(found)) == "lorsu"
    assert {"lorsu", "lorsu-rand", "lorsu-aah", "lora", "spu", "full-ft", "codyra"} <= set(found)
    for declaration in found.values():
        assert issubclass(implementation_of(declaration), UpdateMethod)
        assert declaration.description and declaration.hyperparameters().template


def test_declarations_import_without_torch() -> None:
    code = (
        "import sys\n"
        "from catalogue.declarations import declarations\n"
        "assert len(declarations()) >= 8\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('clean')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_derived_values_are_resolved_once_against_the_model() -> None:
    lorsu = resolve_hyperparameters("lorsu", {"rank": 8}, EIGHT_HEADS)
    assert lorsu.model_dump()["top_k_heads"] == 2 and lorsu.model_dump()["alpha"] == 8.0
    # A stored (resolved) set resolves to itself and parses back complete.
    assert lorsu.resolve(EIGHT_HEADS) == lorsu
    assert stored_hyperparameters("lorsu", lorsu.model_dump()) == lorsu
    with pytest.raises(HyperparameterError) as unresolved:
        stored_hyperparameters("lorsu", {"rank": 8})
    assert unresolved.value.code == "unresolved_hyperparameter"
    with pytest.raises(HyperparameterError) as too_many:
        resolve_hyperparameters("lorsu", {"top_k_heads": 9}, EIGHT_HEADS)
    assert too_many.value.code == "invalid_hyperparameter"


def test_lorsu_and_its_ablations_share_their_structure_defaults() -> None:
    found = declarations()
    lorsu, all_heads, random_heads = (
        found[name].hyperparameters() for name in ("lorsu", "lorsu-aah", "lorsu-rand")
    )
    for field in ("rank", "sparsity", "learning_rate", "max_steps"):
        assert getattr(all_heads, field) == getattr(lorsu, field) == getattr(random_heads, field)


# -- a toy method, registered from this test module alone ----------------------------------


class OneBiasHyperparameters(CommonHyperparameters):
    block: int = Field(0, ge=0, le=63, description="the block whose fc1 bias trains")


class OneBias(UpdateMethod[OneBiasHyperparameters]):
    """Trains the fc1 bias of one block, in place."""

    def prepare(self, context: UpdateContext) -> None:
        self.bias: nn.Parameter = context.model.blocks[self.hyperparameters.block].fc1.bias
        self.bias.requires_grad_(True)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [self.bias]

    def merge(self) -> None:
        self.bias.requires_grad_(False)

    def discard(self) -> None:
        self.bias.requires_grad_(False)


def test_a_new_method_is_one_declaration_and_one_class(
    model: DualEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(method_catalogue, "_declarations", dict(method_catalogue.declarations()))
    method_catalogue.register(
        MethodDeclaration(
            name="toy-one-bias",
            description="trains one fc1 bias",
            hyperparameters=OneBiasHyperparameters,
            implementation=f"{__name__}:OneBias",
        )
    )
    # The API's validation knows it (defaults, ranges) ...
    with pytest.raises(HyperparameterError):
        resolve_hyperparameters("toy-one-bias", {"block": -1}, model.architecture)
    before = model.image_encoder_state()
    # ... and the engine runs it.
    report = run_update(
        model,
        noise_examples(["boot", "bag"] * 2),
        method="toy-one-bias",
        hyperparameters={"block": 1, "learning_rate": 1e-2, "epochs": 2},
    ).report
    bias = model.blocks[1].fc1.bias
    assert report.method == "toy-one-bias" and report.trainable_parameters == bias.numel()
    changed = {k for k, v in model.image_encoder_state().items() if not torch.equal(v, before[k])}
    assert len(changed) == 1 and changed.pop().endswith("layers.1.mlp.fc1.bias")
