"""Load benchmark of the production topology on loopback (issue 5); see run.py."""
