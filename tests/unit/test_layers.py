"""The package's layers (docs/architecture.md): what each part of cairn may import. Domain code is
pure and testable without a cluster; only kube/ talks to the API server; nothing imports upward."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "cairn"

# Part of the package → the parts of it that it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "api": set(),
    "storage": set(),
    "monitoring": {"api"},
    "registry": {"api"},
    "analysis": {"api", "monitoring"},
    "retraining": {"api"},
    "observability": {"api"},
    "kube": {"api", "observability"},
    "training": {"api", "storage", "monitoring"},
    "serving": {"api", "storage", "training", "monitoring"},
    "serving_entry": {"serving"},  # cairn-serve's command: a signal handler, then the server
    "controllers": {
        "api",
        "storage",
        "registry",
        "analysis",
        "retraining",
        "monitoring",
        "kube",
        "observability",
    },
    "cli": {"api", "kube"},
}
# Third-party packages that only some parts may use.
RESTRICTED = {
    "kopf": {"controllers", "operator_main"},
    "kubernetes": {"kube", "controllers", "cli", "operator_main"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_what_its_layer_may(path: Path) -> None:
    part = part_of(path)
    problems = []
    for name in imports(path):
        top, *rest = name.split(".")
        if top == "cairn" and rest and rest[0] in ALLOWED and part in ALLOWED:
            target = rest[0]
            if target != part and target not in ALLOWED[part]:
                problems.append(f"{name} (cairn.{part} may import {sorted(ALLOWED[part])})")
        if top in RESTRICTED and part not in RESTRICTED[top]:
            problems.append(f"{name} (only {sorted(RESTRICTED[top])} use {top})")
    assert not problems, f"{path.relative_to(PACKAGE)} imports " + "; ".join(problems)


def test_every_part_of_the_package_has_a_rule() -> None:
    parts = {part_of(path) for path in modules()} - {"__init__", "__main__", "operator_main"}
    assert parts <= set(ALLOWED), parts - set(ALLOWED)
