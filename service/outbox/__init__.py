"""Transactional outbox: broker messages are rows first and are sent after commit."""
