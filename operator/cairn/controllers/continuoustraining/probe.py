"""The dataset probe: a short pod that reads a ContinuousTraining's dataset the way training does
and leaves its digest in its termination message (cairn.training.probe). The operator cannot
read a claim itself; a pod that mounts it can, anywhere the training pods could."""

import dataclasses
import datetime
import json
from typing import Any

from cairn.api import ContinuousTraining, contract
from cairn.api.labels import PROBE_LABEL
from cairn.controllers import defaults
from cairn.kube import podprocess, podsecurity
from cairn.storage import InvalidArtifactURI, PodStorage, parse_artifact_uri
from cairn.storage.credentials import credentials_env_from, uses_object_store

Body = dict[str, Any]
CONTAINER = "probe"
TERMINATION_LOG = "/dev/termination-log"
# A probe that has not finished by then (an image that cannot be pulled, a claim that cannot be
# mounted) is given up and reported.
DEADLINE_SECONDS = 120


def pod_name(ct: ContinuousTraining, now: datetime.datetime) -> str:
    return f"{ct.name}-probe-{int(now.timestamp())}"


def build_pod(ct: ContinuousTraining, name: str) -> Body:
    """The probe pod; raises InvalidArtifactURI when the dataset cannot be mounted."""
    template = ct.spec.template
    uri = template.dataset.uri if template.dataset else ""
    storage = PodStorage()
    env = [
        {"name": contract.DATASET_URI, "value": uri},
        {"name": contract.TERMINATION_LOG, "value": TERMINATION_LOG},
    ]
    if uses_object_store(uri):
        # Not downloaded: the probe asks the store for the object's version.
        if not parse_artifact_uri(uri).path:
            raise InvalidArtifactURI(f"{uri}: name an object: s3://<bucket>/<key>")
    else:
        env.append({"name": contract.DATASET_PATH, "value": storage.place(uri, directory=False)})
    container: Body = {
        "name": CONTAINER,
        "image": template.image or defaults.trainer_image(),
        "imagePullPolicy": template.image_pull_policy.value,
        "command": ["python", "-m", "cairn.training.probe"],
        "env": env,
        "volumeMounts": storage.mounts,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        "securityContext": podsecurity.container_context(read_only_root=True),
    }
    if uses_object_store(uri):
        given = template.storage.secret_name if template.storage else None
        container["envFrom"] = credentials_env_from(given, defaults.storage_secret())
    spec: Body = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": DEADLINE_SECONDS,
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": storage.volumes,
        "securityContext": podsecurity.pod_context(),
        **podprocess.process_namespace(),
    }
    if template.node_selector:
        spec["nodeSelector"] = template.node_selector
    if template.tolerations:
        spec["tolerations"] = [t.to_dict() for t in template.tolerations]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ct.namespace, "labels": {PROBE_LABEL: ct.name}},
        "spec": spec,
    }


def mountable(ct: ContinuousTraining) -> str | None:
    """What is wrong with the dataset for a probe, if anything."""
    try:
        build_pod(ct, "check")
    except InvalidArtifactURI as error:
        return f"spec.template.dataset.uri: {error}"
    return None


@dataclasses.dataclass(frozen=True)
class Result:
    """What a finished probe said: the digest, or why there is none."""

    digest: str | None
    error: str | None
    version: str | None = None  # an s3:// object's VersionId or ETag


def result_of(pod: Body) -> Result | None:
    """The probe's result once its pod has finished; None while it runs."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase not in ("Succeeded", "Failed"):
        return None
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        message = (terminated.get("message") or "").strip()
        try:
            said = json.loads(message) if message else {}
        except ValueError:
            said = {"error": message.splitlines()[-1] if message else "no result"}
        if said.get("digest"):
            version = said.get("version")
            return Result(str(said["digest"]), None, str(version) if version else None)
        if said.get("error"):
            return Result(None, str(said["error"]))
    why = status.get("reason") or status.get("message") or "it left no result"
    return Result(None, f"the probe pod {pod['metadata']['name']} failed: {why}")
