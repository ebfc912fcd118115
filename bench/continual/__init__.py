"""Few-shot continual-learning benchmark on real images (issue 3).

``python -m bench.continual.run`` runs it and writes the table and plots under
``bench/results/continual/`` (``--report-only`` re-renders them from the saved runs);
``--quick`` is the CI smoke variant. ``python -m bench.continual.sweep`` runs hyperparameter
grids over the same protocol (bench/results/continual-sweeps/).
"""
