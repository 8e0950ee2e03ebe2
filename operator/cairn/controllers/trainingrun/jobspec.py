"""The batch/v1 Job that runs a TrainingRun: pure, built from the run's spec alone.

The pod gets the trainer contract (DESIGN §3) as environment variables, the artifact store
mounted where `output` says, and the training code from a ConfigMap when the run names one.
"""

import json
from typing import Any

from cairn.api import TrainingRun
from cairn.api.labels import MODEL_LABEL, RUN_LABEL
from cairn.api.trainingrun import DEFAULT_CODE_FILE
from cairn.controllers import defaults
from cairn.storage import PodMount

Body = dict[str, Any]

CONTAINER = "trainer"
CODE_VOLUME = "code"
TERMINATION_LOG = "/dev/termination-log"
# The trainer image runs as this user; fsGroup makes a fresh volume writable for it.
TRAINER_GROUP = 1000


def job_name(run_name: str) -> str:
    return run_name


def labels(run: TrainingRun) -> dict[str, str]:
    return {RUN_LABEL: run.name, MODEL_LABEL: run.spec.model}


def pod_selector(run_name: str) -> dict[str, str]:
    return {RUN_LABEL: run_name}


def _code(run: TrainingRun) -> tuple[list[Body], list[Body], str | None]:
    """Volumes, mounts and the default script path for spec.code."""
    code = run.spec.code
    if code is None:
        return [], [], None
    source: Body = {"name": code.config_map.name}
    key = code.config_map.key
    if key:
        source["items"] = [{"key": key, "path": key}]
    volume = {"name": CODE_VOLUME, "configMap": source}
    mount = {"name": CODE_VOLUME, "mountPath": code.mount_path, "readOnly": True}
    return [volume], [mount], f"{code.mount_path}/{key or DEFAULT_CODE_FILE}"


def _contract_env(run: TrainingRun, output: PodMount, uri: str) -> list[Body]:
    spec = run.spec
    return [
        {"name": "CAIRN_RUN", "value": run.name},
        {"name": "CAIRN_MODEL", "value": spec.model},
        {"name": "CAIRN_PARAMS", "value": json.dumps(spec.params or {}, sort_keys=True)},
        {"name": "CAIRN_DATASET_URI", "value": spec.dataset.uri if spec.dataset else ""},
        {"name": "CAIRN_OUTPUT_DIR", "value": output.directory},
        {"name": "CAIRN_OUTPUT_URI", "value": uri},
        {"name": "CAIRN_TERMINATION_LOG", "value": TERMINATION_LOG},
    ]


def build_job(run: TrainingRun, output: PodMount, output_uri: str) -> Body:
    """The run's Job, with spec.image or else the installation's default trainer image."""
    spec = run.spec
    code_volumes, code_mounts, script = _code(run)
    command = spec.command or (["python", script] if script else None)

    container: Body = {
        "name": CONTAINER,
        "image": run.spec.image or defaults.trainer_image(),
        "imagePullPolicy": spec.image_pull_policy.value,
        # The contract comes after the user's variables: of duplicate names the last one wins,
        # so spec.env cannot silently replace it.
        "env": [*(e.to_dict() for e in spec.env or []), *_contract_env(run, output, output_uri)],
        "volumeMounts": [output.volume_mount, *code_mounts],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
    }
    if command:
        container["command"] = command
    if spec.args:
        container["args"] = spec.args
    if spec.resources:
        container["resources"] = spec.resources.to_dict()

    pod_spec: Body = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [output.volume, *code_volumes],
        "securityContext": {"fsGroup": TRAINER_GROUP},
    }
    if spec.node_selector:
        pod_spec["nodeSelector"] = spec.node_selector
    if spec.tolerations:
        pod_spec["tolerations"] = [t.to_dict() for t in spec.tolerations]
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name

    job_spec: Body = {
        "backoffLimit": spec.backoff_limit,
        "suspend": spec.suspend,
        "template": {"metadata": {"labels": labels(run)}, "spec": pod_spec},
    }
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    if spec.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(run.name),
            "namespace": run.namespace,
            "labels": labels(run),
        },
        "spec": job_spec,
    }
