import logging
from typing import Any

import kopf
import pytest

from cairn import __version__, operator_main
from cairn.operator_main import parse_args


def test_defaults_watch_every_namespace_standalone_with_health_on_8080() -> None:
    options = parse_args([], environ={})

    assert options.namespaces == ()
    assert options.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert options.peering is None
    assert options.metrics_addr == "0.0.0.0:8081"
    assert options.log_format is kopf.LogFormat.FULL
    assert options.log_level == "info"


def test_namespace_flag_repeats() -> None:
    options = parse_args(["-n", "team-a", "--namespace", "team-*"], environ={})

    assert options.namespaces == ("team-a", "team-*")


def test_namespaces_from_environment_are_comma_separated() -> None:
    options = parse_args([], environ={"CAIRN_NAMESPACES": "team-a, team-b,,"})

    assert options.namespaces == ("team-a", "team-b")


def test_namespace_flag_overrides_environment() -> None:
    options = parse_args(["-n", "team-c"], environ={"CAIRN_NAMESPACES": "team-a"})

    assert options.namespaces == ("team-c",)


def test_all_namespaces_flag_overrides_environment() -> None:
    options = parse_args(["--all-namespaces"], environ={"CAIRN_NAMESPACES": "team-a"})

    assert options.namespaces == ()


def test_namespace_and_all_namespaces_together_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["-n", "team-a", "-A"], environ={})

    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_health_address_from_environment_and_flag() -> None:
    from_env = parse_args([], environ={"CAIRN_HEALTH_ADDR": "127.0.0.1:9000"})
    from_flag = parse_args(
        ["--health-addr", "[::]:8081"], environ={"CAIRN_HEALTH_ADDR": "127.0.0.1:9000"}
    )

    assert from_env.liveness_endpoint == "http://127.0.0.1:9000/healthz"
    assert from_flag.liveness_endpoint == "http://[::]:8081/healthz"


def test_peering_from_environment_and_flag() -> None:
    assert parse_args([], environ={"CAIRN_PEERING": "cairn"}).peering == "cairn"
    assert parse_args(["--peering", "other"], environ={"CAIRN_PEERING": "cairn"}).peering == (
        "other"
    )
    assert parse_args([], environ={"CAIRN_PEERING": ""}).peering is None


def test_metrics_address_from_environment_and_flag() -> None:
    assert parse_args([], environ={"CAIRN_METRICS_ADDR": "127.0.0.1:9100"}).metrics_addr == (
        "127.0.0.1:9100"
    )
    assert parse_args(["--metrics-addr", "[::]:9100"], environ={}).metrics_addr == "[::]:9100"
    assert parse_args(["--metrics-addr", "0"], environ={}).metrics_addr == "0"


def test_bad_metrics_address_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--metrics-addr", "localhost"], environ={})

    assert exit_info.value.code == 2
    assert "'localhost' is not HOST:PORT" in capsys.readouterr().err


def test_log_level_from_environment_flag_and_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args([], environ={"CAIRN_LOG_LEVEL": "WARNING"}).log_level == "warning"
    assert parse_args(["--log-level", "error"], environ={}).log_level == "error"
    assert parse_args(["-v"], environ={"CAIRN_LOG_LEVEL": "error"}).log_level == "debug"
    with pytest.raises(SystemExit):
        parse_args(["--log-level", "loud"], environ={})
    assert "'loud' is not one of: debug, info, warning, error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "expected"),
    [("plain", kopf.LogFormat.PLAIN), ("JSON", kopf.LogFormat.JSON)],
)
def test_log_format_by_name(name: str, expected: kopf.LogFormat) -> None:
    assert parse_args(["--log-format", name], environ={}).log_format is expected
    assert parse_args([], environ={"CAIRN_LOG_FORMAT": name}).log_format is expected


def test_unknown_log_format_is_refused_with_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args([], environ={"CAIRN_LOG_FORMAT": "yaml"})

    assert exit_info.value.code == 2
    assert "'yaml' is not one of: plain, full, json" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--version"], environ={})

    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cairn-operator {__version__}"


class _KopfCalls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.configure: dict[str, Any] = {}
        self.run: dict[str, Any] = {}
        monkeypatch.setattr(kopf, "configure", lambda **kwargs: self.configure.update(kwargs))
        monkeypatch.setattr(kopf, "run", lambda **kwargs: self.run.update(kwargs))
        # main() sets the root logger's level: put it back afterwards.
        monkeypatch.setattr(logging.getLogger(), "level", logging.getLogger().level)


def test_main_runs_kopf_clusterwide_standalone_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CAIRN_NAMESPACES",
        "CAIRN_HEALTH_ADDR",
        "CAIRN_PEERING",
        "CAIRN_METRICS_ADDR",
        "CAIRN_LOG_FORMAT",
        "CAIRN_LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    calls = _KopfCalls(monkeypatch)

    operator_main.main([])

    assert calls.run == {
        "clusterwide": True,
        "namespaces": (),
        "standalone": True,
        "peering_name": None,
        "liveness_endpoint": "http://0.0.0.0:8080/healthz",
        "memo": {"metrics_addr": "0.0.0.0:8081"},
    }
    assert calls.configure == {
        "verbose": False,
        "log_format": kopf.LogFormat.FULL,
        "log_prefix": None,
    }


def test_main_runs_kopf_namespaced_with_peering(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _KopfCalls(monkeypatch)

    operator_main.main(["-n", "ml", "--peering", "cairn", "--log-format", "json", "-v"])

    assert calls.run["clusterwide"] is False
    assert calls.run["namespaces"] == ("ml",)
    assert calls.run["standalone"] is False
    assert calls.run["peering_name"] == "cairn"
    assert calls.configure == {
        "verbose": True,
        "log_format": kopf.LogFormat.JSON,
        "log_prefix": None,
    }


def test_main_sets_the_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    _KopfCalls(monkeypatch)

    operator_main.main(["--log-level", "error"])

    assert logging.getLogger().level == logging.ERROR
