"""Who is calling: the principal an API key stands for (imported by the key rules, the key
cache and every route that checks scopes or models)."""

from __future__ import annotations

from dataclasses import dataclass

from service.db.values import Scope


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name, scopes and the models it may see (None: all)."""

    key_id: str
    name: str
    scopes: frozenset[Scope]
    model_ids: frozenset[str] | None = None

    def has(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    def can_access(self, model_id: str) -> bool:
        """Whether this key may see the model at all."""
        return self.model_ids is None or model_id in self.model_ids

    @property
    def actor(self) -> str:
        """How this caller is recorded in histories (deployments)."""
        return f"key:{self.name}"
