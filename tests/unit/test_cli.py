import pytest

from cairn import __version__
from cairn.cli.approval import CommandError, parse_version
from cairn.cli.main import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cairn {__version__}"


def test_without_arguments_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("usage: cairn")


@pytest.mark.parametrize("text", ["3", "v3", "iris-v3"])
def test_version_spellings(text: str) -> None:
    assert parse_version(text, "iris") == 3


@pytest.mark.parametrize("text", ["0", "x", "wine-v3", "-1"])
def test_bad_versions_are_refused(text: str) -> None:
    with pytest.raises(CommandError, match="not a version number"):
        parse_version(text, "iris")
