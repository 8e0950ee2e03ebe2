"""The Grafana dashboard the chart ships: it parses, and its queries and the operator's metrics
agree both ways (no panel queries a metric the operator does not export, and every metric the
operator exports has a panel)."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.registry import CollectorRegistry

from cairn.observability.metrics import PREFIX, REGISTRY

DASHBOARD = Path(__file__).resolve().parents[2] / "charts/cairn/dashboards/cairn.json"

# PromQL words that look like metric names but are not.
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
)
# The series a metric family is exposed as, by type (prometheus-client's naming).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}

Body = dict[str, Any]


def exported(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Each metric family the registry exports → the series names it is scraped as."""
    families: dict[str, set[str]] = {}
    for family in registry.collect():
        # Families with no sample yet (a labelled gauge before startup) still have a type.
        names = {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        families[family.name] = names | {sample.name for sample in family.samples}
    return families


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range windows
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\$\w+", "", expr)  # dashboard variables
    identifiers = re.findall(r"\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", expr)
    return {name for name in identifiers if name not in KEYWORDS}


def panels(dashboard: Body) -> Iterator[Body]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside it


def expressions(dashboard: Body) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]


@pytest.fixture(scope="module")
def dashboard() -> Body:
    loaded: Body = json.loads(DASHBOARD.read_text())
    return loaded


def test_metric_names_of_expressions() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (kind, le) (rate(a_bucket{job=~"$job", x="b c"}'
        "[$__rate_interval]))) / on (kind) group_left b_total"
    )
    assert metric_names(expr) == {"a_bucket", "b_total"}


def test_every_query_names_a_metric_the_operator_exports(dashboard: Body) -> None:
    series = set().union(*exported(REGISTRY).values())
    for expr in expressions(dashboard):
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= series, f"{expr!r} queries {sorted(names - series)}, not exported"


def test_every_operator_metric_has_a_panel(dashboard: Body) -> None:
    queried = set().union(*(metric_names(e) for e in expressions(dashboard)))
    ours = {name: series for name, series in exported(REGISTRY).items() if name.startswith(PREFIX)}
    assert len(ours) >= 8
    missing = sorted(name for name, series in ours.items() if not series & queried)
    assert not missing, f"no panel shows {missing}"


def test_panels_use_the_datasource_variable_and_have_titles(dashboard: Body) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    titles = []
    for panel in panels(dashboard):
        assert panel.get("title"), panel
        titles.append(panel["title"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    assert len(titles) == len(set(titles)), "panel titles repeat"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
