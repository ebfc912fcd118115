"""Serving benchmarks: throughput against the bare model, version loads against chain depth,
activation across replicas, memory per loaded version (``python -m bench.serving.run``)."""
