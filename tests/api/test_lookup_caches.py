"""The request path's caches: API keys and model rows for a TTL, caption embeddings least
recently used first, with a clock the tests move by hand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from service.auth import key_cache
from service.auth.key_cache import KeyCache
from service.auth.service import Principal
from service.db.migrate import upgrade_head
from service.db.session import create_db_engine, create_session_factory, session_scope
from service.errors import NotFound
from service.registry.lookup import ModelLookup
from service.serving.text_embeddings import TextEmbeddings
from tests.db.helpers import add_model


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _principal(key_id: str) -> Principal:
    return Principal(key_id=key_id, name=key_id, scopes=frozenset({"inference"}))


def test_a_key_is_trusted_for_the_ttl_and_not_a_moment_longer() -> None:
    clock = Clock()
    cache = KeyCache(ttl=5.0, clock=clock)
    cache.put("digest-a", _principal("a"), None)
    clock.now += 4.999
    entry = cache.get("digest-a")
    assert entry is not None and entry.principal.key_id == "a"
    clock.now += 0.001
    assert cache.get("digest-a") is None
    cache.put("digest-a", _principal("a"), None)  # read again: trusted afresh
    assert cache.get("digest-a") is not None


def test_forget_drops_every_entry_of_that_key_only() -> None:
    cache = KeyCache(ttl=5.0, clock=Clock())
    cache.put("digest-a1", _principal("a"), None)
    cache.put("digest-a2", _principal("a"), None)
    cache.put("digest-b", _principal("b"), None)
    cache.forget("a")
    assert cache.get("digest-a1") is None and cache.get("digest-a2") is None
    assert cache.get("digest-b") is not None


def test_ttl_zero_caches_nothing() -> None:
    cache = KeyCache(ttl=0.0, clock=Clock())
    cache.put("digest-a", _principal("a"), None)
    assert cache.get("digest-a") is None


def test_past_its_capacity_the_least_recently_used_key_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(key_cache, "CAPACITY", 2)
    cache = KeyCache(ttl=5.0, clock=Clock())
    cache.put("digest-a", _principal("a"), None)
    cache.put("digest-b", _principal("b"), None)
    assert cache.get("digest-a") is not None  # a is now the more recently used
    cache.put("digest-c", _principal("c"), None)
    assert cache.get("digest-b") is None
    assert cache.get("digest-a") is not None and cache.get("digest-c") is not None


@pytest.fixture
def sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade_head(sqlite_url)
    engine = create_db_engine(sqlite_url)
    try:
        yield create_session_factory(engine)
    finally:
        engine.dispose()


def _queries(sessions: sessionmaker[Session]) -> list[str]:
    seen: list[str] = []
    engine = sessions.kw["bind"]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_a_model_row_is_read_once_per_ttl(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        model_id = add_model(session, name="cats")[0].id
    clock = Clock()
    lookup = ModelLookup(ttl=5.0, clock=clock)
    queries = _queries(sessions)
    with session_scope(sessions) as session:
        assert lookup.get(session, model_id).name == "cats"
        read = len(queries)
        assert read >= 1
        clock.now += 4.9
        assert lookup.get(session, model_id).name == "cats"
        found = lookup.by_name(session, "cats")
        assert found is not None and found.id == model_id
        assert len(queries) == read  # both from memory
        clock.now += 0.1
        assert lookup.get(session, model_id).name == "cats"
        assert len(queries) > read  # past the TTL: read again
        again = len(queries)
        lookup.forget(model_id)
        assert lookup.get(session, model_id).id == model_id
        assert len(queries) > again
        with pytest.raises(NotFound):
            lookup.get(session, "no-such-model")


def test_a_model_lookup_with_ttl_zero_always_reads(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        model_id = add_model(session, name="dogs")[0].id
    lookup = ModelLookup(ttl=0.0, clock=Clock())
    queries = _queries(sessions)
    with session_scope(sessions) as session:
        lookup.get(session, model_id)
        read = len(queries)
        lookup.get(session, model_id)
        assert len(queries) == 2 * read


class CountingEncoder:
    """Stands in for a dual encoder's text side: one distinct vector per text."""

    def __init__(self) -> None:
        self.computed: list[str] = []

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        self.computed += texts
        return torch.tensor([[float(len(text)), float(sum(map(ord, text)))] for text in texts])


def test_text_embeddings_drop_the_least_recently_used_beyond_capacity() -> None:
    encoder = CountingEncoder()
    texts = TextEmbeddings(encoder, capacity=2)  # type: ignore[arg-type]
    first = texts.embed(["cat", "dog", "cat"])
    assert encoder.computed == ["cat", "dog"] and len(texts) == 2
    assert torch.equal(first[0], first[2])
    texts.embed(["cat"])  # a hit: cat is now the most recently used
    assert encoder.computed == ["cat", "dog"]
    texts.embed(["cow"])  # evicts dog, not cat
    assert len(texts) == 2
    texts.embed(["cat"])
    assert encoder.computed == ["cat", "dog", "cow"]
    again = texts.embed(["dog"])
    assert encoder.computed == ["cat", "dog", "cow", "dog"]
    assert torch.equal(again[0], first[1])
