"""Which error codes an operation can answer, read from the code that raises them.

The OpenAPI document lists, for every operation and status, the codes the operation can
answer (``service/api/openapi.py``). Those lists are not written by hand: starting from the
route's endpoint and every dependency it has, this module reads the source of each function
it reaches (``ast``), follows the calls and references it can resolve to functions, methods
and classes of this project, and collects every error it constructs:

- ``InvalidInput("no_examples", ...)`` (any :class:`ServiceError` subclass with a literal
  code): the code with the class's status, or the literal ``status_code=`` given;
- a code forwarded through a parameter (``check_batch_size(n, limit, "texts")`` building
  ``f"too_many_{items}"``, ``clean_text(..., "empty_label", ...)``): the literal arguments at
  every call site, or the parameter's default;
- an error of another layer that carries its own code (``HyperparameterError("unknown_method",
  ...)`` in the method catalogue) and is re-raised as a :class:`ServiceError` with
  ``error.code`` inside an ``except`` clause: its codes with the re-raising status.

Names resolve through each function's globals and closure, ``self`` through the method's
class, and parameters through their annotations. A call on a value of unknown type is not
followed; the test suite checks that every error response it sees carries a documented code
(``tests/api/conftest.py``), and that every code raised somewhere is documented somewhere.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from types import FunctionType, MethodType, ModuleType, UnionType
from typing import Any

from service.errors import ServiceError

# Code outside these packages (FastAPI, SQLAlchemy, torch) is not read.
_OWN_PACKAGES = ("service.", "catalogue.")


@dataclass
class RaisedCodes:
    """What one function can raise, directly or through what it reaches."""

    codes: set[tuple[int, str]] = field(default_factory=set)
    # parameter name -> (status, template with "{}" where the argument goes)
    forwarded: dict[str, set[tuple[int, str]]] = field(default_factory=dict)
    # codes of foreign coded errors constructed, by class
    foreign: dict[type[BaseException], set[str]] = field(default_factory=dict)
    # foreign classes re-raised as a ServiceError of this status
    translated: dict[type[BaseException], int] = field(default_factory=dict)

    def merge(self, other: RaisedCodes) -> None:
        self.codes |= other.codes
        for cls, codes in other.foreign.items():
            self.foreign.setdefault(cls, set()).update(codes)
        self.translated.update(other.translated)

    def resolved(self) -> set[tuple[int, str]]:
        """Own codes plus every foreign code that is re-raised with a status."""
        codes = set(self.codes)
        for cls, status in self.translated.items():
            for foreign_cls, foreign_codes in self.foreign.items():
                if issubclass(foreign_cls, cls):
                    codes |= {(status, code) for code in foreign_codes}
        return codes


def _is_own(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.startswith(_OWN_PACKAGES)


def _is_service_error(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, ServiceError)


def _is_foreign_coded_error(obj: Any) -> bool:
    """An own exception class (not a ServiceError) constructed as ``Cls("code", message)``."""
    return (
        isinstance(obj, type)
        and issubclass(obj, BaseException)
        and not issubclass(obj, ServiceError)
        and _is_own(obj)
        and "code" in inspect.signature(obj.__init__).parameters
    )


def _literal_text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _constant_text(node: ast.expr | None, scope: _Scope) -> str | None:
    """A module-level string constant named by ``node`` (``INVALID_CHARACTERS``)."""
    if isinstance(node, ast.Name) and node.id in scope.parameters:
        return None
    value = scope.resolve(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
    return value if isinstance(value, str) else None


class _Scope:
    """Name resolution inside one function: closure, globals, builtins, ``self``, annotated
    parameters."""

    def __init__(self, function: FunctionType) -> None:
        closure = inspect.getclosurevars(function)
        self.names: dict[str, Any] = {
            **vars(builtins),
            **function.__globals__,
            **closure.nonlocals,
        }
        self.parameters = list(inspect.signature(function).parameters)
        self.owner = _owning_class(function)
        try:
            hints = typing.get_type_hints(function)
        except Exception:  # an annotation that cannot be evaluated: no types for parameters
            hints = {}
        self.types = {name: _plain_type(hint) for name, hint in hints.items()}

    def resolve(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            if node.id == "self" and self.owner is not None:
                return self.owner
            if node.id in self.types and node.id in self.parameters:
                return self.types[node.id]
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            if base is None:
                return None
            try:
                return inspect.getattr_static(base, node.attr)
            except AttributeError:
                return None
        return None


def _plain_type(hint: Any) -> Any:
    """``Annotated[X, ...]`` -> X; ``X | None`` -> X; anything else as it is."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _plain_type(typing.get_args(hint)[0])
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if origin in (typing.Union, UnionType) and len(args) == 1:
        return _plain_type(args[0])
    return hint


def _owning_class(function: FunctionType) -> type | None:
    parts = function.__qualname__.split(".")
    if len(parts) < 2 or "<locals>" in parts:
        return None
    owner: Any = inspect.getmodule(function)
    for part in parts[:-1]:
        owner = getattr(owner, part, None)
    return owner if isinstance(owner, type) else None


def _functions_of(obj: Any) -> Iterator[FunctionType]:
    """The own functions a reference reaches: a function, a method, or a class's methods."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    if isinstance(obj, MethodType):
        obj = obj.__func__
    if isinstance(obj, FunctionType):
        unwrapped = inspect.unwrap(obj)
        if isinstance(unwrapped, FunctionType) and _is_own(unwrapped):
            yield unwrapped
        return
    if isinstance(obj, type) and _is_own(obj) and not issubclass(obj, BaseException):
        for member in vars(obj).values():
            if isinstance(member, (FunctionType, staticmethod, classmethod, property)):
                yield from _functions_of(member)
    # a callable object made by a factory (``Depends(model_scope(...))``) is its __call__
    elif callable(obj) and _is_own(type(obj)) and not isinstance(obj, (type, ModuleType)):
        yield from _functions_of(type(obj).__call__)


@cache
def raised_by(function: FunctionType) -> RaisedCodes:
    """Everything ``function`` can raise (see the module docstring); memoised, and safe on
    recursion (a function reached again while it is being read counts as raising nothing
    more)."""
    result = RaisedCodes()
    _IN_PROGRESS[function] = result
    try:
        _read(function, result)
    finally:
        del _IN_PROGRESS[function]
    return result


_IN_PROGRESS: dict[FunctionType, RaisedCodes] = {}


def _summary(function: FunctionType) -> RaisedCodes:
    if function in _IN_PROGRESS:
        return _IN_PROGRESS[function]
    return raised_by(function)


def _read(function: FunctionType, result: RaisedCodes) -> None:
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return
    tree = ast.parse(source)
    scope = _Scope(function)
    handlers = _except_names(tree, scope)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            _read_call(node, scope, handlers, result)
        if isinstance(node, (ast.Name, ast.Attribute)):
            for reached in _functions_of(scope.resolve(node)):
                if reached is not function:
                    result.merge(_summary(reached))


def _except_names(tree: ast.AST, scope: _Scope) -> dict[str, type[BaseException]]:
    """``except SomeError as name`` -> {name: SomeError} for the own coded error classes."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None:
            caught = scope.resolve(node.type)
            if _is_foreign_coded_error(caught):
                names[node.name] = caught
    return names


def _read_call(
    node: ast.Call,
    scope: _Scope,
    handlers: dict[str, type[BaseException]],
    result: RaisedCodes,
) -> None:
    callee = scope.resolve(node.func)
    code_arg = node.args[0] if node.args else _keyword(node, "code")
    if _is_service_error(callee):
        status = _status_of(callee, node)
        literal = _literal_text(code_arg) or _constant_text(code_arg, scope)
        if literal is not None:
            result.codes.add((status, literal))
        elif isinstance(code_arg, ast.Name) and code_arg.id in scope.parameters:
            result.forwarded.setdefault(code_arg.id, set()).add((status, "{}"))
        elif isinstance(code_arg, ast.JoinedStr):
            template, parameter = _template(code_arg, scope)
            if parameter is not None:
                result.forwarded.setdefault(parameter, set()).add((status, template))
        elif (
            isinstance(code_arg, ast.Attribute)
            and code_arg.attr == "code"
            and isinstance(code_arg.value, ast.Name)
            and code_arg.value.id in handlers
        ):
            result.translated[handlers[code_arg.value.id]] = status
        return
    if _is_foreign_coded_error(callee):
        literal = _literal_text(code_arg)
        if literal is not None:
            result.foreign.setdefault(callee, set()).add(literal)
        return
    for reached in _functions_of(callee):
        summary = _summary(reached)
        for parameter, forwards in summary.forwarded.items():
            for value in _arguments_for(reached, parameter, node, scope):
                result.codes |= {(status, template.format(value)) for status, template in forwards}


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _status_of(cls: type[ServiceError], node: ast.Call) -> int:
    given = _keyword(node, "status_code")
    if isinstance(given, ast.Constant) and isinstance(given.value, int):
        return given.value
    return cls.status_code


def _template(node: ast.JoinedStr, scope: _Scope) -> tuple[str, str | None]:
    """``f"too_many_{items}"`` -> ("too_many_{}", "items") when ``items`` is a parameter."""
    parts, parameter = [], None
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value).replace("{", "{{").replace("}", "}}"))
        elif (
            isinstance(value, ast.FormattedValue)
            and isinstance(value.value, ast.Name)
            and value.value.id in scope.parameters
            and parameter is None
        ):
            parts.append("{}")
            parameter = value.value.id
        else:
            return "", None
    return "".join(parts), parameter


def _arguments_for(
    callee: FunctionType, parameter: str, node: ast.Call, scope: _Scope
) -> Iterator[str]:
    """The literal value(s) a call gives ``parameter`` (its default when it gives none)."""
    signature = inspect.signature(callee)
    parameters = list(signature.parameters.values())
    offset = 1 if parameters and parameters[0].name in ("self", "cls") else 0
    names = [p.name for p in parameters]
    given = _keyword(node, parameter)
    if given is None and parameter in names:
        index = names.index(parameter) - offset
        if 0 <= index < len(node.args):
            given = node.args[index]
    if given is None:
        default = signature.parameters[parameter].default
        if isinstance(default, str):
            yield default
        return
    literal = _literal_text(given)
    if literal is not None:
        yield literal
    elif isinstance(given, ast.IfExp):
        for branch in (given.body, given.orelse):
            branch_literal = _literal_text(branch)
            if branch_literal is not None:
                yield branch_literal


def codes_of(calls: list[Callable[..., Any]]) -> set[tuple[int, str]]:
    """Every ``(status, code)`` the given entry points (an endpoint and its dependencies) can
    raise."""
    total = RaisedCodes()
    for call in calls:
        for function in _functions_of(call):
            total.merge(raised_by(function))
    return total.resolved()
