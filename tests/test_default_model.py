"""The embedded default registers the base model with real evaluation sets, once."""

from __future__ import annotations

from pathlib import Path

from service.db.session import create_db_engine, create_session_factory, session_scope
from service.registry import repository
from service.settings import Settings
from tests.model_fixtures import tiny_model_dir
from workers.basemodel.default_model import EVAL_SETS, prepare_default_model

__all__ = ["tiny_model_dir"]


def test_default_model_is_registered_once_with_control_sets(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    settings = Settings(data_dir=tmp_path, base_model_path=tiny_model_dir)
    settings.ensure_directories()
    model_id = prepare_default_model(settings)
    assert model_id is not None
    assert prepare_default_model(settings) is None  # second start: nothing new
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            assert [m.id for m in repository.list_models(session)] == [model_id]
            sets = repository.list_eval_sets(session, model_id)
            assert {s.name: s.kind for s in sets} == {
                name: kind for name, (kind, _, _) in EVAL_SETS.items()
            }
            assert {s.kind for s in sets} == {"control", "target"}
    finally:
        engine.dispose()
