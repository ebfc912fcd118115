"""The embedded default registers the stand-in base model and the stand-in VLM paired with it,
with real evaluation sets, once; an existing deployment of the base gains the VLM. It needs a
migrated database (``vlmc migrate`` is the one step that migrates)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.db.migrate import SchemaNotCurrent, upgrade_head
from service.db.session import create_db_engine, create_session_factory, session_scope
from service.registration.service import register_model
from service.registry import repository
from service.settings import Settings
from standin.basemodel.default_model import (
    EVAL_SETS,
    VLM_EVAL_SETS,
    VLM_QUESTION_SET,
    prepare_default_model,
)
from standin.basemodel.release import materialise_release


@pytest.fixture(scope="module")
def standin_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialise_release(tmp_path_factory.mktemp("models") / "standin-base")


def _migrated(settings: Settings) -> Settings:
    """``settings`` once its database is at the latest revision (what ``vlmc migrate`` does)."""
    settings.ensure_directories()
    upgrade_head(settings.database_url)
    return settings


def _sets(settings: Settings, model_id: str) -> dict[str, tuple[str, list[str], list]]:
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            return {
                s.name: (
                    s.kind,
                    [item.image_sha256 for item in repository.eval_set_items(session, s.id)],
                    [item.question for item in repository.eval_set_items(session, s.id)],
                )
                for s in repository.list_eval_sets(session, model_id)
            }
    finally:
        engine.dispose()


def _answers(settings: Settings, model_id: str, set_name: str) -> list[str]:
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            eval_set = repository.get_eval_set_by_name(session, model_id, set_name)
            assert eval_set is not None
            return [item.label for item in repository.eval_set_items(session, eval_set.id)]
    finally:
        engine.dispose()


def test_default_models_are_registered_once_with_their_sets(
    tmp_path: Path, standin_base: Path
) -> None:
    settings = _migrated(Settings(data_dir=tmp_path, base_model_path=standin_base))
    base_id, vlm_id = prepare_default_model(settings)
    assert prepare_default_model(settings) == []  # second start: nothing new
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            models = {m.id: m for m in repository.list_models(session)}
            assert set(models) == {base_id, vlm_id}
            assert (models[base_id].family, models[base_id].pair_path) == (
                "vision-text-dual-encoder",
                None,
            )
            vlm = models[vlm_id]
            assert (vlm.name, vlm.family) == (settings.default_vlm_name, "llava")
            assert vlm.pair_path == str(standin_base.resolve())
            assert vlm.vision_towers_equal is True
    finally:
        engine.dispose()
    base_sets = _sets(settings, base_id)
    assert {name: kind for name, (kind, _, _) in base_sets.items()} == {
        name: kind for name, (kind, _, _) in EVAL_SETS.items()
    }
    vlm_sets = _sets(settings, vlm_id)
    assert set(vlm_sets) == {*VLM_EVAL_SETS, VLM_QUESTION_SET}
    kind, question_images, questions = vlm_sets[VLM_QUESTION_SET]
    assert kind == "control" and len(questions) >= 100
    assert all(question and question.startswith(("Is ", "Can ", "Does ")) for question in questions)
    yes_no = _answers(settings, vlm_id, VLM_QUESTION_SET)
    # Balanced (concepts without a yes question give a no one).
    assert abs(yes_no.count("Yes.") - yes_no.count("No.")) <= 0.1 * len(yes_no)
    # No image of the yes/no set is in the Google set (whose odd half trains as anchors).
    assert not set(question_images) & set(vlm_sets["emoji-google"][1])


def test_an_existing_default_deployment_gains_the_vlm(tmp_path: Path, standin_base: Path) -> None:
    settings = _migrated(Settings(data_dir=tmp_path, base_model_path=standin_base))
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            register_model(
                session,
                settings,
                name=settings.default_model_name,
                base_path=str(standin_base),
                actor="test",
            )
    finally:
        engine.dispose()
    [vlm_id] = prepare_default_model(settings)
    assert set(_sets(settings, vlm_id)) == {*VLM_EVAL_SETS, VLM_QUESTION_SET}


def test_another_base_model_gets_no_default_vlm(tmp_path: Path) -> None:
    from standin.factory import build_tiny_dual_encoder

    base = build_tiny_dual_encoder(tmp_path / "models" / "tiny-base")
    settings = _migrated(Settings(data_dir=tmp_path / "data", base_model_path=base))
    [base_id] = prepare_default_model(settings)
    assert not settings.vlm_model_dir.exists()
    assert _sets(settings, base_id)


def test_an_unmigrated_database_is_refused_before_anything_is_assembled(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", base_model_path=tmp_path / "models" / "base")
    settings.ensure_directories()
    with pytest.raises(SchemaNotCurrent, match="vlmc migrate"):
        prepare_default_model(settings)
    assert not settings.base_model_dir.exists() and not settings.vlm_model_dir.exists()
