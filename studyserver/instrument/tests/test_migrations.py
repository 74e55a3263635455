"""Upgrading a deployment: studies and participants from before stored versions keep the
questionnaire they ran on (the deployment's FLOODLIGHT_INSTRUMENT)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from studyserver.instrument.definition import load_instrument

BEFORE = [("studies", "0002_assignment_quota"), ("survey", "0001_initial")]
AFTER = [("studies", "0004_instrument_version_existing_studies"), ("survey", "0003_participant_questionnaire_existing")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_studies_and_participants_get_the_deployment_questionnaire():
    old = _migrate(BEFORE)
    study = old.get_model("studies", "Study").objects.create(slug="fielded", title="Fielded", consent_version="1.0")
    old.get_model("survey", "Participant").objects.create(study_id=study.pk, token="t1", consent_version="1.0",
                                                          instrument_version="")
    try:
        new = _migrate(AFTER)
        version = new.get_model("instrument", "InstrumentVersion").objects.get()
        assert version.label == load_instrument(settings.FLOODLIGHT_INSTRUMENT).version
        migrated = new.get_model("studies", "Study").objects.get(pk=study.pk)
        assert migrated.questionnaire_id == version.content_hash and migrated.consent_version == version.consent_version
        participant = new.get_model("survey", "Participant").objects.get(token="t1")
        assert participant.questionnaire_id == version.content_hash
        assert participant.instrument_version == version.label
        assert participant.consent_version == "1.0"  # what was recorded stays recorded
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
