"""Generating and hashing API keys.

Keys are 256-bit random tokens, so a plain sha256 is enough to store them (a slow password
hash protects low-entropy secrets; these have none to protect).
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "vlmc_"


def generate_key() -> str:
    """A new random API key (``vlmc_`` + 43 url-safe characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters of a key, safe to show in listings and logs."""
    return key[:12]
