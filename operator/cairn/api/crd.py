"""The CustomResourceDefinition of a Cairn kind, built from its pydantic model."""

import copy
from typing import Any

from cairn.api.base import CATEGORY, GROUP, VERSION, Crd, Resource
from cairn.api.cel import add_rules
from cairn.api.schema import Schema, structural_schema

# The API server supplies these three; a CRD's schema may not constrain metadata further.
STANDARD_PROPERTIES: Schema = {
    "apiVersion": {
        "type": "string",
        "description": "The versioned schema of this object: cairn.dev/v1alpha1.",
    },
    "kind": {"type": "string", "description": "The kind of this object."},
    "metadata": {"type": "object"},
}


def openapi_schema(resource: type[Resource]) -> Schema:
    """The openAPIV3Schema of the kind: spec and status from the model, the rest standard."""
    schema = structural_schema(resource)
    schema["properties"].update(copy.deepcopy(STANDARD_PROPERTIES))
    # Of the fields Python requires, only spec is the user's to give; the rest are standard.
    required = [name for name in schema.pop("required", []) if name == "spec"]
    if required:
        schema["required"] = required
    if resource.crd.rules:
        add_rules(schema, *resource.crd.rules)
    return schema


def subresources(crd: Crd) -> dict[str, Any]:
    """Status always (status is written only through it); scale when the kind has replicas."""
    found: dict[str, Any] = {"status": {}}
    if crd.scale:
        found["scale"] = {
            "specReplicasPath": crd.scale.spec_replicas_path,
            "statusReplicasPath": crd.scale.status_replicas_path,
        }
        if crd.scale.label_selector_path:
            found["scale"]["labelSelectorPath"] = crd.scale.label_selector_path
    return found


def custom_resource_definition(resource: type[Resource]) -> dict[str, Any]:
    crd = resource.crd
    kind = resource.kind_name()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{crd.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": crd.plural,
                "singular": kind.lower(),
                "shortNames": list(crd.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema(resource)},
                    "subresources": subresources(crd),
                    "additionalPrinterColumns": [
                        {
                            "name": column.name,
                            "type": column.type,
                            "jsonPath": column.json_path,
                            "description": column.description,
                            **({"priority": column.priority} if column.priority else {}),
                        }
                        for column in crd.columns
                    ],
                }
            ],
        },
    }
