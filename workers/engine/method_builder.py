"""Builds the update method a declaration names (the engine's side of the catalogue)."""

from __future__ import annotations

import importlib
from typing import Any

from catalogue.declarations import MethodDeclaration, declaration_of
from catalogue.hyperparameters import CommonHyperparameters
from workers.engine.method import UpdateMethod


def implementation_of(declaration: MethodDeclaration) -> type[UpdateMethod[Any]]:
    """The UpdateMethod subclass ``declaration.implementation`` points at."""
    module_name, _, class_name = declaration.implementation.partition(":")
    implementation = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(implementation, type) and issubclass(implementation, UpdateMethod)):
        raise TypeError(f"{declaration.implementation} is not an UpdateMethod")
    return implementation


def create_method(name: str, hyperparameters: CommonHyperparameters) -> UpdateMethod[Any]:
    """A fresh, single-use instance of method ``name`` with its resolved hyperparameters."""
    return implementation_of(declaration_of(name))(hyperparameters)
