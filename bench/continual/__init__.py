"""Few-shot continual-learning benchmark on real images (protocol: ``protocol.py``; the
findings behind the methods' defaults: ``bench/results/continual-findings.md``).

``python -m bench.continual.run`` runs it and writes the table and plots under
``bench/results/continual/`` (``--report-only`` re-renders them from the saved runs);
``--quick`` is the CI smoke variant. ``python -m bench.continual.sweep`` runs hyperparameter
grids over the same protocol (bench/results/continual-sweeps/).
"""
