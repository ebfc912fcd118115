"""Liveness, readiness (database, broker, worker heartbeat) and Prometheus metrics."""
