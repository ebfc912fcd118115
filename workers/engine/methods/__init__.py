"""Update method implementations: one module per method, named in its declaration
(``catalogue/methods/<name>.py``, ``implementation = "workers.engine.methods.<name>:Class"``)
and imported only by the engine's method builder."""
