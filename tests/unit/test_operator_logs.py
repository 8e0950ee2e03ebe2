"""The operator's log lines, through kopf's own formatters: JSON is one object a line, and a
line logged inside a reconcile names the object and the reconcile."""

import json
import logging
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from cairn.observability import logs
from cairn.observability.reconciles import reconciling

logger = logging.getLogger("cairn.controllers.test")


@pytest.fixture
def configured() -> Iterator[None]:
    """Lets a test call kopf.configure; puts back what it replaces on the root logger."""
    root, quiet = logging.getLogger(), logging.getLogger("asyncio")
    saved = (root.handlers[:], root.level, quiet.handlers[:], quiet.propagate)
    yield
    root.handlers[:], quiet.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    quiet.propagate = saved[3]


def configure(log_format: kopf.LogFormat) -> None:
    # As cairn-operator does: kopf's handler on the root logger, then the context filter.
    kopf.configure(log_format=log_format, log_prefix=None)
    logs.install()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.usefixtures("configured")
def test_json_lines_of_a_reconcile_carry_object_and_reconcile_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(kopf.LogFormat.JSON)

    with reconciling("TrainingRun", "ml", "iris-1") as reconcile_id:
        logger.info("created Job %s", "iris-1")
        logger.warning("a second line")
    logger.info("outside any reconcile")

    first, second, outside = json_lines(capsys.readouterr().err)
    assert first["message"] == "created Job iris-1"
    assert first["severity"] == "info"
    assert first["logger"] == "cairn.controllers.test"
    assert first["reconcile_id"] == reconcile_id
    assert first["object"] == {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "TrainingRun",
        "namespace": "ml",
        "name": "iris-1",
    }
    assert second["reconcile_id"] == reconcile_id and second["severity"] == "warn"
    assert "object" not in outside and "reconcile_id" not in outside
    assert outside["logger"] == "cairn.controllers.test"


@pytest.mark.usefixtures("configured")
def test_an_exception_stays_on_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure(kopf.LogFormat.JSON)

    with reconciling("Model", "ml", "iris"):
        try:
            raise RuntimeError("first line\nsecond line")
        except RuntimeError:
            logger.exception("reconcile failed")

    (line,) = json_lines(capsys.readouterr().err)
    assert line["message"] == "reconcile failed"
    assert "RuntimeError: first line\nsecond line" in line["exc_info"]
    assert line["object"]["name"] == "iris"


@pytest.mark.usefixtures("configured")
def test_kopfs_own_object_reference_wins(capsys: pytest.CaptureFixture[str]) -> None:
    """A line that already names its object (kopf's per-object loggers) keeps it."""
    configure(kopf.LogFormat.JSON)
    job = {"apiVersion": "batch/v1", "kind": "Job", "namespace": "ml", "name": "iris-1"}

    with reconciling("TrainingRun", "ml", "iris-1"):
        logger.info("about the Job", extra={"k8s_ref": job})

    (line,) = json_lines(capsys.readouterr().err)
    assert line["object"] == job
    assert line["reconcile_id"]


@pytest.mark.usefixtures("configured")
def test_text_lines_start_with_namespace_and_name(capsys: pytest.CaptureFixture[str]) -> None:
    configure(kopf.LogFormat.PLAIN)

    with reconciling("ModelDeployment", "ml", "iris"):
        logger.info("rolled out")
    logger.info("plain")

    assert capsys.readouterr().err.splitlines() == ["[ml/iris] rolled out", "plain"]


@pytest.mark.usefixtures("configured")
def test_install_is_idempotent() -> None:
    configure(kopf.LogFormat.JSON)
    logs.install()

    for handler in logging.getLogger().handlers:
        assert sum(isinstance(f, logs.ContextFilter) for f in handler.filters) <= 1


@pytest.mark.usefixtures("configured")
def test_kopf_handler_successes_are_dropped_but_not_its_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(kopf.LogFormat.PLAIN)
    objects = logging.getLogger("kopf.objects")
    monkeypatch.setattr(objects, "filters", [])
    logs.quiet_handler_successes()
    logs.quiet_handler_successes()
    assert len(objects.filters) == 1

    objects.info("Handler 'on_run' succeeded.")
    objects.info("Creation is processed: 1 succeeded; 0 failed.")
    objects.error("Handler 'on_run' failed with an exception. Will ignore.")

    assert capsys.readouterr().err.splitlines() == [
        "Creation is processed: 1 succeeded; 0 failed.",
        "Handler 'on_run' failed with an exception. Will ignore.",
    ]
