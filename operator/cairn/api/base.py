"""What every Cairn API type shares: the group and version, camelCase JSON, the resource shape."""

import dataclasses
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP: Final = "cairn.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "cairn.dev/v1alpha1"  # a literal, so that it can type the field below
CATEGORY = "cairn"


class ApiModel(BaseModel):
    """snake_case in Python, camelCase in JSON and YAML, as Kubernetes APIs spell their fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        # JSON, and so the API server, has no NaN or infinity: refuse them before a write fails.
        allow_inf_nan=False,
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form a manifest or a patch carries: camelCase, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """A column of `kubectl get`."""

    name: str
    json_path: str
    description: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    priority: int = 0  # 0: always shown; 1: only with `-o wide`


@dataclasses.dataclass(frozen=True)
class Scale:
    """The scale subresource: where `kubectl scale` and a HorizontalPodAutoscaler read and write."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str | None = None


@dataclasses.dataclass(frozen=True)
class Crd:
    """What the CRD of a kind says beyond the schema of its spec and status."""

    plural: str
    short_names: tuple[str, ...]
    columns: tuple[PrinterColumn, ...]
    # x-kubernetes-validations on the whole object: the only place a rule can read metadata.name.
    rules: tuple[dict[str, str], ...] = ()
    scale: Scale | None = None


AGE_COLUMN = PrinterColumn(
    "Age", ".metadata.creationTimestamp", "Time since the object was created.", type="date"
)


class Resource(ApiModel):
    """A whole object of a Cairn kind: subclasses add `kind`, `spec`, `status` and `crd`."""

    crd: ClassVar[Crd]

    api_version: Literal["cairn.dev/v1alpha1"] = Field(
        default=API_VERSION, description="The API group and version, cairn.dev/v1alpha1."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Standard Kubernetes object metadata."
    )

    # The metadata the controllers read, typed (metadata itself stays the API server's).
    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def namespace(self) -> str:
        return str(self.metadata["namespace"])

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid") or "")

    @property
    def generation(self) -> int | None:
        generation = self.metadata.get("generation")
        return int(generation) if generation is not None else None

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.get("labels") or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.get("annotations") or {})

    @property
    def deleting(self) -> bool:
        """Deletion has begun (metadata.deletionTimestamp is set)."""
        return bool(self.metadata.get("deletionTimestamp"))

    @classmethod
    def kind_name(cls) -> str:
        kind = cls.model_fields["kind"].default
        if not isinstance(kind, str):
            raise TypeError(f"{cls.__name__} declares no kind")
        return kind

    @classmethod
    def plural(cls) -> str:
        return cls.crd.plural
