"""Update methods, one module each, all behind :class:`workers.engine.method.UpdateMethod`."""
