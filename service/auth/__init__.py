"""API keys with scopes (inference, corrections, admin), stored as sha256 only."""
