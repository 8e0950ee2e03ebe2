"""The batch/v1 Job that runs a TrainingRun: pure, built from the run's spec alone.

The pod gets the trainer contract (DESIGN §3) as environment variables, the artifact store
mounted where `output` says, and the training code from a ConfigMap when the run names one.
"""

import json
from typing import Any

from cairn.controllers import defaults
from cairn.storage import PodMount

Body = dict[str, Any]

CONTAINER = "trainer"
CODE_VOLUME = "code"
DEFAULT_CODE_MOUNT = "/opt/cairn/code"
DEFAULT_CODE_FILE = "train.py"
TERMINATION_LOG = "/dev/termination-log"
# The trainer image runs as this user; fsGroup makes a fresh volume writable for it.
TRAINER_GROUP = 1000

RUN_LABEL = "cairn.dev/run"
MODEL_LABEL = "cairn.dev/model"


def job_name(run_name: str) -> str:
    return run_name


def labels(run: Body) -> dict[str, str]:
    return {RUN_LABEL: run["metadata"]["name"], MODEL_LABEL: run["spec"]["model"]}


def _code(spec: Body) -> tuple[list[Body], list[Body], str | None]:
    """Volumes, mounts and the default script path for spec.code."""
    code = spec.get("code")
    if not code or not code.get("configMap"):
        return [], [], None
    config_map = code["configMap"]
    mount_path = code.get("mountPath") or DEFAULT_CODE_MOUNT
    source: Body = {"name": config_map["name"]}
    key = config_map.get("key")
    if key:
        source["items"] = [{"key": key, "path": key}]
    volume = {"name": CODE_VOLUME, "configMap": source}
    mount = {"name": CODE_VOLUME, "mountPath": mount_path, "readOnly": True}
    return [volume], [mount], f"{mount_path}/{key or DEFAULT_CODE_FILE}"


def _contract_env(run: Body, output: PodMount, uri: str) -> list[Body]:
    spec = run["spec"]
    return [
        {"name": "CAIRN_RUN", "value": run["metadata"]["name"]},
        {"name": "CAIRN_MODEL", "value": spec["model"]},
        {"name": "CAIRN_PARAMS", "value": json.dumps(spec.get("params") or {}, sort_keys=True)},
        {"name": "CAIRN_DATASET_URI", "value": (spec.get("dataset") or {}).get("uri", "")},
        {"name": "CAIRN_OUTPUT_DIR", "value": output.directory},
        {"name": "CAIRN_OUTPUT_URI", "value": uri},
        {"name": "CAIRN_TERMINATION_LOG", "value": TERMINATION_LOG},
    ]


def build_job(run: Body, output: PodMount, output_uri: str) -> Body:
    spec = run["spec"]
    code_volumes, code_mounts, script = _code(spec)
    command = spec.get("command") or (["python", script] if script else None)

    container: Body = {
        "name": CONTAINER,
        "image": spec.get("image") or defaults.trainer_image(),
        "imagePullPolicy": spec.get("imagePullPolicy", "IfNotPresent"),
        # The contract comes after the user's variables: of duplicate names the last one wins,
        # so spec.env cannot silently replace it.
        "env": [*(spec.get("env") or []), *_contract_env(run, output, output_uri)],
        "volumeMounts": [output.volume_mount, *code_mounts],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
    }
    if command:
        container["command"] = command
    if spec.get("args"):
        container["args"] = spec["args"]
    if spec.get("resources"):
        container["resources"] = spec["resources"]

    pod_spec: Body = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [output.volume, *code_volumes],
        "securityContext": {"fsGroup": TRAINER_GROUP},
    }
    for field in ("nodeSelector", "tolerations", "serviceAccountName"):
        if spec.get(field):
            pod_spec[field] = spec[field]

    job_spec: Body = {
        "backoffLimit": spec.get("backoffLimit", 0),
        "suspend": bool(spec.get("suspend", False)),
        "template": {"metadata": {"labels": labels(run)}, "spec": pod_spec},
    }
    for field in ("activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if spec.get(field) is not None:
            job_spec[field] = spec[field]

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(run["metadata"]["name"]),
            "namespace": run["metadata"]["namespace"],
            "labels": labels(run),
        },
        "spec": job_spec,
    }
