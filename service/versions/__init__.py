"""Versions, the active pointer, deployments (activate / rollback) and the activation gate."""
