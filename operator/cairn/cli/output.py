"""Rendering what a read command found: aligned tables and `key: value` blocks like kubectl's,
or JSON and YAML for scripts. Pure: every function returns the text it would print."""

import argparse
import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

FORMATS = ("table", "json", "yaml")
# kubectl separates columns by three spaces; an empty cell shows as <none>, as it does there.
GAP = "   "
NONE = "<none>"

Body = dict[str, Any]
Cell = str | int | float | None


def add_output_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default="table",
        help="table (default), or json / yaml: the same facts as structured data, for scripts",
    )


def render(data: Any, output: str, table: str) -> str:
    """`table` for people; otherwise `data` (already built from the same facts) as JSON or YAML."""
    if output == "json":
        return json.dumps(data, indent=2, sort_keys=False)
    if output == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n")
    return table


def cell(value: Cell) -> str:
    if value is None or value == "":
        return NONE
    if isinstance(value, float):
        return number(value)
    return str(value)


def number(value: float) -> str:
    """A metric as a person reads it: at most four significant digits, no trailing zeros."""
    return f"{value:.4g}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """Columns aligned on the widest cell; the last column is not padded."""
    lines = [list(headers), *([cell(value) for value in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        GAP.join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def fields(pairs: Iterable[tuple[str, Cell]]) -> str:
    """A `Key:  value` block, values aligned, as kubectl describe prints one."""
    items = [(f"{key}:", cell(value)) for key, value in pairs]
    width = max((len(key) for key, _ in items), default=0)
    return "\n".join(f"{key.ljust(width)}  {value}".rstrip() for key, value in items)


def indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def pairs(mapping: Mapping[str, Any] | None) -> str:
    """{a: 1, b: 0.97} as a=1, b=0.97; sorted, so the same map always reads the same."""
    return ", ".join(
        f"{key}={number(value) if isinstance(value, float) else value}"
        for key, value in sorted((mapping or {}).items())
    )


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def duration(seconds: float | None) -> str | None:
    """kubectl's short human durations (its HumanDuration): 45s, 4m5s, 64m, 3h20m, 5h, 2d3h."""
    if seconds is None:
        return None
    total = max(0, int(seconds))
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 120:
        return f"{total}s"
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def since(text: str | None, now: datetime.datetime) -> str | None:
    """How long ago an API timestamp was, as kubectl's AGE column shows it."""
    then = parse_time(text)
    return duration((now - then).total_seconds()) if then else None


def until(text: str | None, now: datetime.datetime) -> str | None:
    """How long until an API timestamp, in the same short form."""
    then = parse_time(text)
    return duration((then - now).total_seconds()) if then else None


def between(start: str | None, end: str | None, now: datetime.datetime) -> float | None:
    """Seconds from start to end, or to now while there is no end."""
    began = parse_time(start)
    if began is None:
        return None
    return ((parse_time(end) or now) - began).total_seconds()


def condition(body: Body, type_: str) -> Body:
    """The status condition of that type, or {}."""
    for found in (body.get("status") or {}).get("conditions") or []:
        if found.get("type") == type_:
            return dict(found)
    return {}
