"""Load benchmark of the production topology on loopback; see run.py (results:
bench/results/load.md, notes: bench/results/load-notes.md)."""
