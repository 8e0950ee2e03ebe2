"""Prints the manifests of a directory with every TrainingRun's spec.output.uri on an object
store: `python3 with_s3_output.py s3://bucket/prefix DIR | kubectl apply -f -` (make demo STORE=s3).
Each run writes to <prefix>/<run name>."""

import sys
from pathlib import Path
from typing import Any

import yaml


def with_output(documents: list[Any], prefix: str) -> list[Any]:
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "TrainingRun":
            name = document["metadata"]["name"]
            document["spec"]["output"] = {"uri": f"{prefix.rstrip('/')}/{name}"}
    return documents


def main(prefix: str, directory: str) -> None:
    documents: list[Any] = []
    for path in sorted(Path(directory).glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    yaml.safe_dump_all(with_output(documents, prefix), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main(*sys.argv[1:3])
