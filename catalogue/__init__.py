"""The update methods there are, and the vocabulary both the API and the engine share.

Torch-free and below both trees: ``service`` (the API validates a correction with a method's
declaration) and ``workers`` (the engine builds the method from the same declaration) import
it; it imports neither. Modules:

- :mod:`catalogue.declarations` finds every method declared under ``catalogue/methods/``;
- :mod:`catalogue.hyperparameters` holds what every method's hyperparameters share;
- :mod:`catalogue.architecture` describes an image encoder's shape without loading it;
- :mod:`catalogue.captions` turns labels and question/answer pairs into captions.
"""
