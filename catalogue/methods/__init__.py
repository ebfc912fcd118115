"""One module per update method: its name, description, hyperparameter schema with defaults
and ranges, and where its implementation lives (pydantic only). Found by
:mod:`catalogue.declarations`; adding a method adds a module here and one implementation under
``workers/engine/methods/``."""
