"""Method name -> implementation. The only place that knows every method."""

from __future__ import annotations

from workers.engine.method import UpdateMethod
from workers.engine.methods.codyra import Codyra
from workers.engine.methods.full_ft import FullFinetune
from workers.engine.methods.keeplora import KeepLora
from workers.engine.methods.lora import Lora
from workers.engine.methods.lorsu import Lorsu, LorsuAllHeads, LorsuRandomHeads
from workers.engine.methods.spu import Spu

_METHODS: dict[str, type[UpdateMethod]] = {
    method.name: method
    for method in (
        Lorsu,
        LorsuRandomHeads,
        LorsuAllHeads,
        Lora,
        Spu,
        FullFinetune,
        Codyra,
        KeepLora,
    )
}


def create_method(name: str) -> UpdateMethod:
    """A fresh instance of the method called ``name`` (KeyError if unknown)."""
    return _METHODS[name]()


def method_names() -> list[str]:
    return list(_METHODS)
