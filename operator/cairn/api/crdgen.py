"""Write the CRDs of every Cairn kind into a folder: `python -m cairn.api.crdgen crds` (make crds).

The YAML is deterministic (sorted keys), so a test can compare it with what is checked in.
"""

import argparse
from pathlib import Path

import yaml

from cairn.api import GROUP, KINDS
from cairn.api.crd import custom_resource_definition

HEADER = "# Generated from operator/cairn/api by `make crds`. Do not edit.\n"


def render() -> dict[str, str]:
    """File name → YAML of each kind's CRD."""
    files = {}
    for resource in KINDS:
        document = custom_resource_definition(resource)
        files[f"{GROUP}_{resource.crd.plural}.yaml"] = HEADER + yaml.safe_dump(
            document, sort_keys=True, width=100
        )
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the CRDs of every Cairn kind.")
    parser.add_argument("directory", type=Path, help="where to write the YAML files")
    directory = parser.parse_args(argv).directory
    directory.mkdir(parents=True, exist_ok=True)
    files = render()
    for stale in directory.glob(f"{GROUP}_*.yaml"):
        if stale.name not in files:  # a kind renamed or removed
            stale.unlink()
    for name, text in files.items():
        (directory / name).write_text(text)
        print(directory / name)


if __name__ == "__main__":
    main()
