"""Resolving a Model's aliases to versions that may be served (pure)."""

from collections.abc import Mapping


def resolve(
    aliases: Mapping[str, int], ready_versions: set[int], phases: Mapping[int, str], model: str
) -> tuple[dict[str, int], list[str]]:
    """Aliases whose target is Validated and Approved, and a sentence for each one refused."""
    resolved: dict[str, int] = {}
    problems: list[str] = []
    for alias, version in sorted(aliases.items()):
        if version in ready_versions:
            resolved[alias] = version
        elif version not in phases:
            problems.append(f"{alias} → {version}: {model}-v{version} does not exist")
        else:
            problems.append(
                f"{alias} → {version}: {model}-v{version} is {phases[version]}, "
                "not Validated and Approved"
            )
    return resolved, problems
