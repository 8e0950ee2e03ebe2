"""`cairn promote|abort|pause|resume`: they write spec.paused or an annotation naming the
rollout's version (and step), never status."""

from typing import Any

import pytest

from cairn.cli.main import main
from cairn.kube import objects

Body = dict[str, Any]


@pytest.fixture
def patches(monkeypatch: pytest.MonkeyPatch) -> list[Body]:
    written: list[Body] = []
    mdep = {
        "metadata": {"name": "iris", "namespace": "ml"},
        "spec": {"model": "iris"},
        "status": {"canary": {"version": 3, "step": 1}},
    }
    monkeypatch.setattr(objects, "get", lambda plural, ns, name: mdep if name == "iris" else None)
    monkeypatch.setattr(objects, "patch", lambda plural, ns, name, body: written.append(body))
    return written


@pytest.mark.parametrize(
    ("command", "patch"),
    [
        ("promote", {"metadata": {"annotations": {"cairn.dev/promote": "3"}}}),
        ("abort", {"metadata": {"annotations": {"cairn.dev/abort": "3"}}}),
        ("pause", {"spec": {"paused": True}}),
        (
            "resume",
            {"spec": {"paused": False}, "metadata": {"annotations": {"cairn.dev/resume": "3/1"}}},
        ),
    ],
)
def test_each_command_writes_only_what_people_own(
    patches: list[Body], command: str, patch: Body, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "iris", "-n", "ml"]) == 0
    assert patches == [patch]
    assert "status" not in patch
    assert capsys.readouterr().out.startswith("iris: ")


def test_a_missing_deployment_is_a_clear_error(
    patches: list[Body], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["promote", "wine", "-n", "ml"]) == 1
    assert "ModelDeployment wine not found in namespace ml" in capsys.readouterr().err
    assert patches == []
