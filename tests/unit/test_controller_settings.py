import logging
import socket

import kopf
import pytest

from cairn.controllers import settings as controller_settings


def _trainingrun() -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "cairn.dev/v1alpha1",
            "kind": "TrainingRun",
            "metadata": {"name": "iris", "namespace": "ml"},
            "spec": {"model": "iris"},
        }
    )


@pytest.fixture
def settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    controller_settings.configure(settings, instance="cairn-operator-0")
    return settings


def test_handler_progress_is_kept_in_cairn_annotations(settings: kopf.OperatorSettings) -> None:
    patch = kopf.Patch()
    settings.persistence.progress_storage.store(
        key=kopf.HandlerId("reconcile"),
        record=kopf.ProgressRecord(started="2026-01-01T00:00:00", retries=1),
        body=_trainingrun(),
        patch=patch,
    )

    annotations = patch["metadata"]["annotations"]
    assert "cairn.dev/reconcile" in annotations
    assert all(key.startswith("cairn.dev/") for key in annotations)
    assert "status" not in patch


def test_last_handled_spec_is_kept_in_a_cairn_annotation(settings: kopf.OperatorSettings) -> None:
    patch = kopf.Patch()
    settings.persistence.diffbase_storage.store(
        body=_trainingrun(), patch=patch, essence=kopf.BodyEssence(spec={"model": "iris"})
    )

    annotation = patch["metadata"]["annotations"]["cairn.dev/last-handled-configuration"]
    assert '"model":"iris"' in annotation


def test_finalizer_is_cairns(settings: kopf.OperatorSettings) -> None:
    assert settings.persistence.finalizer == "cairn.dev/finalizer"


def test_only_warnings_from_handlers_become_events(settings: kopf.OperatorSettings) -> None:
    assert settings.posting.level == logging.WARNING
    assert settings.posting.reporting_component == "cairn-operator"
    assert settings.posting.reporting_instance == "cairn-operator-0"


def test_watches_end_on_the_server_before_the_client_gives_up(
    settings: kopf.OperatorSettings,
) -> None:
    server_timeout = settings.watching.server_timeout
    client_timeout = settings.watching.client_timeout
    assert server_timeout is not None
    assert client_timeout is not None
    assert 0 < server_timeout < client_timeout


def test_instance_is_named_after_the_pod() -> None:
    assert controller_settings.instance_name({"POD_NAME": "cairn-operator-7d9f"}) == (
        "cairn-operator-7d9f"
    )


def test_instance_name_falls_back_to_the_hostname() -> None:
    assert controller_settings.instance_name({}) == socket.gethostname()
