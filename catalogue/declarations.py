"""The update methods there are: each declared once.

A method is a module under ``catalogue/methods/`` (name, one-line description, hyperparameter
schema with defaults and valid ranges, and where the implementation is) plus its
implementation, a :class:`~workers.engine.method.UpdateMethod` under
``workers/engine/methods/``. This module finds every declaration by itself, so adding a method
edits no other file. Declarations import pydantic only: the API validates corrections with
them without importing torch; the engine builds its methods from the same declarations.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from catalogue.architecture import VisionArchitecture
from catalogue.hyperparameters import CommonHyperparameters, HyperparameterError

DEFAULT_METHOD = "lorsu"


@dataclass(frozen=True)
class MethodDeclaration:
    """What the API and the engine need to know of one update method."""

    name: str
    description: str
    hyperparameters: type[CommonHyperparameters]
    # "package.module:ClassName" of the UpdateMethod subclass (imported only by the engine).
    implementation: str


_declarations: dict[str, MethodDeclaration] = {}
_discovered = False
_lock = threading.Lock()


def register(declaration: MethodDeclaration) -> MethodDeclaration:
    """Add a method to the catalogue (a second method of the same name is an error)."""
    with _lock:
        existing = _declarations.get(declaration.name)
        if existing is not None and existing != declaration:
            raise ValueError(f"method {declaration.name!r} is declared twice")
        _declarations[declaration.name] = declaration
    return declaration


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    package = importlib.import_module("catalogue.methods")
    for module in pkgutil.iter_modules(package.__path__):
        declared = importlib.import_module(f"{package.__name__}.{module.name}")
        for declaration in declared.DECLARATIONS:
            register(declaration)
    _discovered = True


def declarations() -> dict[str, MethodDeclaration]:
    """Every method by name, in a stable order."""
    _discover()
    ordered = sorted(_declarations.items(), key=lambda item: (item[0] != DEFAULT_METHOD, item[0]))
    return dict(ordered)


def method_names() -> tuple[str, ...]:
    return tuple(declarations())


def declaration_of(method: str) -> MethodDeclaration:
    """The declaration of ``method``, or :class:`HyperparameterError` ``unknown_method``."""
    found = declarations().get(method)
    if found is None:
        raise HyperparameterError(
            "unknown_method", f"unknown method {method!r}; available: {', '.join(method_names())}"
        )
    return found


def parse_hyperparameters(
    method: str, overrides: Mapping[str, Any] | None = None
) -> CommonHyperparameters:
    """``method``'s schema with ``overrides`` applied and range-checked (derived values may
    still be unset: see :func:`resolve_hyperparameters`)."""
    schema = declaration_of(method).hyperparameters
    try:
        return schema(**dict(overrides or {}))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'hyperparameters'}: {item['msg']}"
            for item in error.errors()
        )
        raise HyperparameterError("invalid_hyperparameter", problems) from error


def resolve_hyperparameters(
    method: str, overrides: Mapping[str, Any] | None, architecture: VisionArchitecture
) -> CommonHyperparameters:
    """Every hyperparameter ``method`` trains with on a model of ``architecture``: defaults,
    ``overrides`` and derived values, checked. A resolved set resolves to itself."""
    return parse_hyperparameters(method, overrides).resolve(architecture)


def stored_hyperparameters(method: str, stored: Mapping[str, Any]) -> CommonHyperparameters:
    """The typed set a job stored at submission (resolved then; checked to be complete)."""
    hyperparameters = parse_hyperparameters(method, stored)
    missing = hyperparameters.unresolved()
    if missing:
        raise HyperparameterError(
            "unresolved_hyperparameter", f"stored hyperparameters lack {', '.join(missing)}"
        )
    return hyperparameters
