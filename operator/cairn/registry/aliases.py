"""Resolving a Model's aliases to versions that may be served (pure)."""

from collections.abc import Mapping

from cairn.api import ModelVersionPhase


def resolve(
    aliases: Mapping[str, int],
    ready_versions: set[int],
    phases: Mapping[int, ModelVersionPhase | None],
    model: str,
) -> tuple[dict[str, int], list[str]]:
    """Aliases whose target is Validated and Approved, and a sentence for each one refused.
    `phases`: every existing version's phase, None while it is not judged yet."""
    resolved: dict[str, int] = {}
    problems: list[str] = []
    for alias, version in sorted(aliases.items()):
        if version in ready_versions:
            resolved[alias] = version
        elif version not in phases:
            problems.append(f"{alias} → {version}: {model}-v{version} does not exist")
        else:
            phase = phases[version]
            state = f"is {phase}" if phase is not None else "is not judged yet"
            problems.append(
                f"{alias} → {version}: {model}-v{version} {state}, not Validated and Approved"
            )
    return resolved, problems
