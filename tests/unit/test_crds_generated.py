"""The CRDs in crds/ are generated from operator/cairn/api, current, and structural."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cairn.api import KINDS, ModelDeployment, ModelVersion, Resource, TrainingRun
from cairn.api.crd import custom_resource_definition
from cairn.api.crdgen import render

CRDS_DIR = Path(__file__).resolve().parents[2] / "crds"
# The Helm chart cannot read crds/ (outside its directory): `make crds` writes it a copy.
CHART_CRDS_DIR = Path(__file__).resolve().parents[2] / "charts/cairn/files/crds"
# The keywords a structural schema may use that these CRDs need; anything else is a mistake
# (pydantic's `title`, `$ref`, `const`, `propertyNames`, boolean `exclusiveMinimum`...).
ALLOWED_KEYWORDS = {
    "additionalProperties",
    "anyOf",
    "default",
    "description",
    "enum",
    "format",
    "items",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minLength",
    "minimum",
    "nullable",
    "pattern",
    "properties",
    "required",
    "type",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
}
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]

Schema = dict[str, Any]


def schema_nodes(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node under `node`, with its path (.spec.env[].name, .spec.params.*)."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from schema_nodes(sub, f"{path}.{name}")
    if "items" in node:
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}.*")


def openapi_schema(resource: type[Resource]) -> Schema:
    version = custom_resource_definition(resource)["spec"]["versions"][0]
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema


def kind_id(resource: type[Resource]) -> str:
    return resource.__name__


@pytest.fixture(params=KINDS, ids=kind_id)
def resource(request: pytest.FixtureRequest) -> type[Resource]:
    kind: type[Resource] = request.param
    return kind


def test_checked_in_crds_are_the_generated_ones() -> None:
    generated = render()
    checked_in = {path.name: path.read_text() for path in CRDS_DIR.glob("*.yaml")}

    assert checked_in == generated, "crds/ is out of date with operator/cairn/api: run make crds"


def test_the_helm_charts_crds_are_the_generated_ones() -> None:
    in_chart = {path.name: path.read_text() for path in CHART_CRDS_DIR.glob("*.yaml")}

    assert in_chart == render(), "charts/cairn/files/crds is out of date: run make crds"


def test_every_kind_has_its_crd_file() -> None:
    assert sorted(render()) == [
        "cairn.dev_continuoustrainings.yaml",
        "cairn.dev_modeldeployments.yaml",
        "cairn.dev_models.yaml",
        "cairn.dev_modelversions.yaml",
        "cairn.dev_trainingruns.yaml",
    ]


def test_crd_files_are_single_yaml_documents_without_anchors() -> None:
    for name, text in render().items():
        assert "&id" not in text, f"{name} uses YAML anchors, which some tools mishandle"
        (document,) = yaml.safe_load_all(text)
        assert document["kind"] == "CustomResourceDefinition"


def test_names_scope_and_category(resource: type[Resource]) -> None:
    spec = custom_resource_definition(resource)["spec"]

    assert spec["group"] == "cairn.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["cairn"]
    assert spec["names"]["singular"] == kind_id(resource).lower()
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"]["status"] == {}


def test_short_names() -> None:
    short_names = {
        kind_id(resource): custom_resource_definition(resource)["spec"]["names"]["shortNames"]
        for resource in KINDS
    }
    assert short_names == {
        "TrainingRun": ["tr"],
        "Model": ["mdl"],
        "ModelVersion": ["mv"],
        "ModelDeployment": ["mdep"],
        "ContinuousTraining": ["ct"],
    }


def test_model_deployments_have_the_scale_subresource() -> None:
    version = custom_resource_definition(ModelDeployment)["spec"]["versions"][0]

    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }


def test_schema_has_no_ref_title_or_union(resource: type[Resource]) -> None:
    for path, node in schema_nodes(openapi_schema(resource)):
        unknown = set(node) - ALLOWED_KEYWORDS
        assert not unknown, f"{path}: keywords a structural schema must not have: {unknown}"
        if "anyOf" in node:
            assert node["anyOf"] == INT_OR_STRING, path
            assert node.get("x-kubernetes-int-or-string") is True, path


def test_every_node_has_a_type(resource: type[Resource]) -> None:
    for path, node in schema_nodes(openapi_schema(resource)):
        untyped_allowed = node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        assert "type" in node or untyped_allowed, f"{path} has no type"


def test_every_field_has_a_description(resource: type[Resource]) -> None:
    schema = openapi_schema(resource)
    assert schema.get("description")
    for path, node in schema_nodes(schema):
        for name, field in node.get("properties", {}).items():
            if f"{path}.{name}" == ".metadata":
                continue  # the API server's own; a CRD may not describe it
            assert field.get("description"), f"{path}.{name} has no description"


def test_spec_and_status_are_top_level_properties(resource: type[Resource]) -> None:
    properties = openapi_schema(resource)["properties"]
    assert set(properties) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert properties["metadata"] == {"type": "object"}


def test_conditions_are_a_list_keyed_by_type(resource: type[Resource]) -> None:
    conditions = openapi_schema(resource)["properties"]["status"]["properties"]["conditions"]

    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["properties"]) == {
        "type",
        "status",
        "observedGeneration",
        "lastTransitionTime",
        "reason",
        "message",
    }
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_every_rule_has_a_message_and_a_valid_field_path(resource: type[Resource]) -> None:
    for path, node in schema_nodes(openapi_schema(resource)):
        for entry in node.get("x-kubernetes-validations", []):
            assert entry["rule"] and entry["message"], f"{path}: {entry}"
            field_path = entry.get("fieldPath")
            if field_path:
                # A path such as .policy.fairness names a field below the node's own.
                target = node
                for part in field_path.removeprefix(".").split("."):
                    assert part in target.get("properties", {}), f"{path}: {entry}"
                    target = target["properties"][part]


@pytest.mark.parametrize(
    ("resource", "mutable"),
    [(TrainingRun, {"suspend"}), (ModelVersion, {"approval"})],
    ids=["TrainingRun", "ModelVersion"],
)
def test_records_refuse_edits_to_every_spec_field_but_one(
    resource: type[Resource], mutable: set[str]
) -> None:
    spec = openapi_schema(resource)["properties"]["spec"]
    frozen = {
        entry["fieldPath"].removeprefix(".")
        for entry in spec["x-kubernetes-validations"]
        if entry.get("reason") == "FieldValueForbidden" and "oldSelf" in entry["rule"]
    }

    assert frozen == set(spec["properties"]) - mutable


def test_printer_columns_point_at_fields_of_the_schema(resource: type[Resource]) -> None:
    schema = openapi_schema(resource)
    paths = {path for path, _ in schema_nodes(schema)}
    columns = custom_resource_definition(resource)["spec"]["versions"][0][
        "additionalPrinterColumns"
    ]
    assert columns, "kubectl get would show only names"
    for column in columns:
        json_path = column["jsonPath"].split("[")[0]  # a filter selects within the list
        assert json_path == ".metadata.creationTimestamp" or json_path in paths, column


def test_printer_columns_answer_the_first_questions() -> None:
    names = {
        kind_id(resource): [
            column["name"]
            for column in custom_resource_definition(resource)["spec"]["versions"][0][
                "additionalPrinterColumns"
            ]
            if not column.get("priority")
        ]
        for resource in KINDS
    }
    assert names == {
        "TrainingRun": ["Phase", "Model", "Metric", "Version", "Age"],
        "Model": ["Latest", "Aliases", "Age"],
        "ModelVersion": ["Model", "Version", "Approval", "Validated", "Metric", "Age"],
        "ModelDeployment": ["Model", "Stable", "Canary", "Weight", "Phase", "Age"],
        "ContinuousTraining": [
            "Model",
            "Schedule",
            "Last trigger",
            "Last run",
            "Version",
            "Suspended",
            "Age",
        ],
    }


def test_bounded_enough_for_the_cel_cost_budget(resource: type[Resource]) -> None:
    """Lists, maps and strings that CEL rules read are bounded: the API server's cost estimate
    assumes an unbounded one fills a whole request, and refuses a CRD whose rules could cost too
    much. The spec is read by the immutability rules, the rest only where a rule sits."""
    for path, node in schema_nodes(openapi_schema(resource)):
        if not path.startswith(".spec") and "x-kubernetes-validations" not in node:
            continue
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, path
