"""Model loading, preprocessing, snapshots and inference math shared by the API and the workers.

Nothing here trains: the API process imports this package, never ``workers.engine``.
"""
