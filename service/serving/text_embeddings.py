"""Text embeddings per model, cached by text: every version of a model shares them.

Updates change only the image encoder, so a caption's embedding is the same for every version
of a model: the key is the text alone. The text tower of the model's base checkpoint computes
the texts not cached yet, all in one forward pass; the least recently used entries beyond
``capacity`` are dropped.
"""

from __future__ import annotations

import threading

import torch
from cachetools import LRUCache

from service.modelling.dual_encoder import DualEncoder
from service.observability import TEXT_EMBEDDING_LOOKUPS


class TextEmbeddings:
    """L2-normalised text embeddings of one model, with an LRU cache (thread-safe)."""

    def __init__(self, encoder: DualEncoder, capacity: int) -> None:
        self._encoder = encoder
        self._cache: LRUCache[str, torch.Tensor] = LRUCache(maxsize=capacity)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def embed(self, texts: list[str]) -> torch.Tensor:
        """``(len(texts), dim)`` embeddings on the model's device, in the order given."""
        found = self._lookup(texts)
        missing = list(dict.fromkeys(text for text in texts if text not in found))
        TEXT_EMBEDDING_LOOKUPS.labels(result="hit").inc(len(texts) - len(missing))
        TEXT_EMBEDDING_LOOKUPS.labels(result="miss").inc(len(missing))
        if missing:
            computed = self._encoder.encode_texts(missing)
            found.update(zip(missing, computed, strict=True))
            self._store(missing, computed)
        return torch.stack([found[text] for text in texts])

    def _lookup(self, texts: list[str]) -> dict[str, torch.Tensor]:
        found: dict[str, torch.Tensor] = {}
        with self._lock:
            for text in texts:
                embedding = self._cache.get(text)  # a hit counts as a use
                if embedding is not None:
                    found[text] = embedding
        return found

    def _store(self, texts: list[str], embeddings: torch.Tensor) -> None:
        with self._lock:
            for text, embedding in zip(texts, embeddings, strict=True):
                # A row of the batch, cloned so the cache does not pin the whole batch.
                self._cache[text] = embedding.clone()
