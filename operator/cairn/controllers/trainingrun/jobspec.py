"""The batch/v1 Job that runs a TrainingRun: pure, built from the run's spec (and the champion
its Model's promotion policy gives it to beat).

The pod gets the trainer contract (DESIGN §3) as environment variables, the artifact store
mounted where `output` says, the dataset where its URI is, the champion's files read-only, and
the training code from a ConfigMap when the run names one. What lives on an object store
(s3://) is not mounted: the trainer writes its model into an emptyDir and uploads it, and reads
s3:// datasets and champions itself, with the credentials of spec.storage as its environment.
"""

import json
from typing import Any

from cairn.api import TrainingRun, contract
from cairn.api.labels import CHAMPION_ANNOTATION, MODEL_LABEL, RUN_LABEL
from cairn.api.trainingrun import DEFAULT_CODE_FILE, ChampionRef
from cairn.controllers import defaults
from cairn.controllers.trainingrun.output import output_uri
from cairn.kube import podprocess, podsecurity
from cairn.storage import InvalidArtifactURI, PodStorage, parse_artifact_uri
from cairn.storage.credentials import credentials_env_from, uses_object_store

Body = dict[str, Any]

CONTAINER = "trainer"
CODE_VOLUME = "code"
TERMINATION_LOG = "/dev/termination-log"
# Where the model is written before it is uploaded, for an s3:// output.
UPLOAD_DIR = "/cairn/output"
UPLOAD_VOLUME = "output"


MOUNTED_SCHEMES = ("pvc://", "file://")


class Unmountable(ValueError):
    """A URI of the run's spec that its pod cannot mount; the message names the field."""


def job_name(run_name: str) -> str:
    return run_name


def labels(run: TrainingRun) -> dict[str, str]:
    return {RUN_LABEL: run.name, MODEL_LABEL: run.spec.model}


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


def _contract_env(run: TrainingRun, output_dir: str, dataset_path: str | None) -> list[Body]:
    spec = run.spec
    env = [
        {"name": contract.RUN, "value": run.name},
        {"name": contract.MODEL, "value": spec.model},
        {"name": contract.PARAMS, "value": json.dumps(spec.params or {}, sort_keys=True)},
        {"name": contract.DATASET_URI, "value": spec.dataset.uri if spec.dataset else ""},
        {"name": contract.OUTPUT_DIR, "value": output_dir},
        {"name": contract.OUTPUT_URI, "value": output_uri(run)},
        {"name": contract.TERMINATION_LOG, "value": TERMINATION_LOG},
    ]
    if dataset_path is not None:
        env.append({"name": contract.DATASET_PATH, "value": dataset_path})
    return env


def _champion_env(champion: ChampionRef, directory: str | None) -> list[Body]:
    """Where the champion is mounted, or (s3://) where the SDK downloads it from."""
    where = (
        {"name": contract.CHAMPION_DIR, "value": directory}
        if directory is not None
        else {"name": contract.CHAMPION_URI, "value": champion.uri}
    )
    return [
        where,
        {"name": contract.CHAMPION_VERSION, "value": str(champion.version)},
        {"name": contract.CHAMPION_DIGEST, "value": champion.digest},
    ]


def champion_of(job: Body) -> ChampionRef | None:
    """The champion a run's Job was given, read back from its environment."""
    containers = job.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or []}
    uri = (job["metadata"].get("annotations") or {}).get(CHAMPION_ANNOTATION)
    if not env.get(contract.CHAMPION_VERSION) or not uri:
        return None
    return ChampionRef(
        version=int(env[contract.CHAMPION_VERSION]),
        uri=uri,
        digest=env[contract.CHAMPION_DIGEST],
    )


def check(uri: str, field: str) -> None:
    """An s3:// URI that is well formed and names a prefix, else Unmountable naming the field."""
    try:
        parsed = parse_artifact_uri(uri)
    except InvalidArtifactURI as error:
        raise Unmountable(f"{field} {uri!r}: {error}") from error
    if not parsed.path:
        raise Unmountable(f"{field} {uri!r}: a key prefix is needed: s3://<bucket>/<prefix>")


def place(storage: PodStorage, uri: str, field: str, **how: bool) -> str:
    try:
        return storage.place(uri, **how)
    except InvalidArtifactURI as error:
        raise Unmountable(f"{field} {uri!r}: {error}") from error


def build_job(run: TrainingRun, champion: ChampionRef | None = None) -> Body:
    """The run's Job, with spec.image or else the installation's default trainer image; raises
    Unmountable for an output or dataset URI its pod cannot mount."""
    spec = run.spec
    code_volumes, code_mounts, script = _code(run)
    command = spec.command or (["python", script] if script else None)
    storage = PodStorage()
    output = output_uri(run)
    upload_volumes: list[Body] = []
    upload_mounts: list[Body] = []
    if uses_object_store(output):
        check(output, "spec.output.uri")
        output_dir = UPLOAD_DIR
        upload_volumes = [{"name": UPLOAD_VOLUME, "emptyDir": {}}]
        upload_mounts = [{"name": UPLOAD_VOLUME, "mountPath": UPLOAD_DIR}]
    else:
        # The output first: it takes the writable mount of its claim.
        output_dir = place(storage, output, "spec.output.uri", writable=True)
    dataset_uri = spec.dataset.uri if spec.dataset else ""
    dataset_path = (
        place(storage, dataset_uri, "spec.dataset.uri", directory=False)
        if dataset_uri.startswith(MOUNTED_SCHEMES)
        else None
    )
    env = [*(e.to_dict() for e in spec.env or []), *_contract_env(run, output_dir, dataset_path)]
    annotations: dict[str, str] = {}
    if champion is not None:
        remote = uses_object_store(champion.uri)
        directory = None if remote else place(storage, champion.uri, "the champion's artifact")
        env += _champion_env(champion, directory)
        annotations[CHAMPION_ANNOTATION] = champion.uri

    container: Body = {
        "name": CONTAINER,
        "image": run.spec.image or defaults.trainer_image(),
        "imagePullPolicy": spec.image_pull_policy.value,
        # The contract comes after the user's variables: of duplicate names the last one wins,
        # so spec.env cannot silently replace it.
        "env": env,
        "volumeMounts": [*storage.mounts, *upload_mounts, *code_mounts],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "securityContext": podsecurity.container_context(read_only_root=False),
    }
    if uses_object_store(output, dataset_uri, champion.uri if champion else None):
        given = spec.storage.secret_name if spec.storage else None
        container["envFrom"] = credentials_env_from(given, defaults.storage_secret())
    if command:
        container["command"] = command
    if spec.args:
        container["args"] = spec.args
    if spec.resources:
        container["resources"] = spec.resources.to_dict()

    pod_spec: Body = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [*storage.volumes, *upload_volumes, *code_volumes],
        # fsGroup makes the output claim (or the upload directory) writable for the trainer.
        "securityContext": podsecurity.pod_context(),
        **podprocess.process_namespace(),
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
            **({"annotations": annotations} if annotations else {}),
        },
        "spec": job_spec,
    }
