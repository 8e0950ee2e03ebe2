"""The Deployment of each track and the one Service of a ModelDeployment: pure, from its spec and
the version a track serves.

Each track's pods run cairn-serve with the artifact's claim mounted read-only (the artifact's
directory as the subPath) and its digest given, so a pod whose files do not match is never
ready. An s3:// artifact is downloaded by the server itself, through the node's model cache (a
hostPath shared by the serving pods of the node, keyed by digest), with the credentials of
spec.storage as its environment; a download that fails or does not match its digest ends the
container with the reason as its termination message, and the kubelet retries it. The Service
selects the pods of every track, so traffic splits by replica ratio.
"""

import hashlib
import json
import posixpath
from typing import Any

from cairn.api import ModelDeployment
from cairn.api.labels import (
    ARTIFACT_ANNOTATION,
    DEPLOYMENT_LABEL,
    DIGEST_ANNOTATION,
    MANIFEST_HASH_ANNOTATION,
    MODEL_LABEL,
    TRACK_LABEL,
    VERSION_LABEL,
)
from cairn.api.modeldeployment import STABLE
from cairn.api.trainingrun import DEFAULT_ARTIFACTS_CLAIM
from cairn.controllers import defaults
from cairn.controllers.deployment.target import Target
from cairn.kube import podprocess, podsecurity
from cairn.storage import parse_artifact_uri, pvc_mount
from cairn.storage.credentials import credentials_env_from, uses_object_store

Body = dict[str, Any]

CONTAINER = "server"
MODEL_MOUNT = "/cairn/model"
MODEL_VOLUME = "model"
CACHE_MOUNT = "/cairn/cache"
CACHE_VOLUME = "model-cache"
TMP_VOLUME = "tmp"
LOG_MOUNT = "/cairn/predictions"
LOG_VOLUME = "predictions"
# Seconds between SIGTERM (readiness turns false) and the listener closing: time for the
# endpoints to drop the pod, so that a rollout loses no request.
SHUTDOWN_DELAY_SECONDS = 5
# ...and longer while requests still arrive: kube-proxy drops an ended pod's endpoint only once
# the control plane has told it, which a busy (or restarting) one does late; and a pod that was
# the Service's last one is sent requests while it terminates, as long as it answers ready
# (--ready-while-draining), until a replacement is ready, which may take a node's pod start.
SHUTDOWN_MAX_DELAY_SECONDS = 60
DEFAULT_RESOURCES: Body = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "1Gi"},
}


def deployment_name(name: str, track: str) -> str:
    return f"{name}-{track}"


def service_name(name: str) -> str:
    return name


def track_service_name(name: str, track: str) -> str:
    """The Service of one track, which an HTTPRoute sends its weighted share to."""
    return f"{name}-{track}"


def pod_labels(name: str, track: str | None = None) -> dict[str, str]:
    """The labels that select the serving pods of the ModelDeployment (of one track)."""
    return {DEPLOYMENT_LABEL: name, **({TRACK_LABEL: track} if track else {})}


def selector(name: str) -> str:
    """The label selector of every serving pod of the ModelDeployment (status.selector)."""
    return f"{DEPLOYMENT_LABEL}={name}"


def url(name: str, namespace: str, port: int) -> str:
    return f"http://{service_name(name)}.{namespace}.svc:{port}"


def track_labels(mdep: ModelDeployment, track: str, target: Target) -> dict[str, str]:
    return {
        DEPLOYMENT_LABEL: mdep.name,
        TRACK_LABEL: track,
        MODEL_LABEL: target.model,
        VERSION_LABEL: str(target.version),
    }


def served_target(deployment: Body | None) -> Target | None:
    """The version a track's Deployment runs, read back from what build_deployment wrote."""
    if not deployment:
        return None
    meta = deployment["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    try:
        return Target(
            model=labels[MODEL_LABEL],
            version=int(labels[VERSION_LABEL]),
            artifact_uri=annotations[ARTIFACT_ANNOTATION],
            digest=annotations[DIGEST_ANNOTATION],
        )
    except (KeyError, ValueError):
        return None


def _server_args(target: Target, port: int, grpc_port: int) -> list[str]:
    if uses_object_store(target.artifact_uri):
        # --strict: the container ends with the reason, which the operator reads from the pod,
        # and each restart retries the download (and re-reads the Secret).
        source = ["--model-uri", target.artifact_uri, "--cache-dir", CACHE_MOUNT, "--strict"]
    else:
        source = ["--model-dir", MODEL_MOUNT]
    return [
        *source,
        "--name",
        target.model,
        "--version",
        str(target.version),
        "--port",
        str(port),
        "--grpc-port",
        str(grpc_port),
        "--expected-digest",
        target.digest,
        "--shutdown-delay",
        str(SHUTDOWN_DELAY_SECONDS),
        "--shutdown-max-delay",
        str(SHUTDOWN_MAX_DELAY_SECONDS),
        "--ready-while-draining",
    ]


def _model_volumes(target: Target) -> tuple[list[Body], list[Body]]:
    """The volumes and mounts that give the server its model: the claim's directory, or (s3://)
    the node's model cache and a writable /tmp."""
    if not uses_object_store(target.artifact_uri):
        mount = pvc_mount(
            parse_artifact_uri(target.artifact_uri),
            mount_path=MODEL_MOUNT,
            volume_name=MODEL_VOLUME,
            read_only=True,
            sub_path=True,
        )
        return [mount.volume], [mount.volume_mount]
    node_dir = defaults.model_cache_dir()
    cache: Body = (
        {"hostPath": {"path": node_dir, "type": "DirectoryOrCreate"}}
        if node_dir
        else {"emptyDir": {}}
    )
    return (
        [{"name": CACHE_VOLUME, **cache}, {"name": TMP_VOLUME, "emptyDir": {}}],
        [
            {"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
        ],
    )


def prediction_log_place(mdep: ModelDeployment) -> tuple[str, str]:
    """The claim and the directory in it of the prediction log (spec.monitoring.log.uri, or
    pvc://cairn-artifacts/predictions/<model>): beside the models, not in a
    directory of theirs, which the trainer owns."""
    log = mdep.spec.monitoring.log if mdep.spec.monitoring else None
    uri = (
        log.uri if log else None
    ) or f"pvc://{DEFAULT_ARTIFACTS_CLAIM}/predictions/{mdep.spec.model}"
    parsed = parse_artifact_uri(uri)
    return parsed.claim or DEFAULT_ARTIFACTS_CLAIM, parsed.path


def build_deployment(mdep: ModelDeployment, track: str, target: Target, replicas: int) -> Body:
    spec, name = mdep.spec, mdep.name
    port = spec.port
    volumes, mounts = _model_volumes(target)
    labels = track_labels(mdep, track, target)
    probe_port = {"port": "http"}
    container: Body = {
        "name": CONTAINER,
        "image": spec.image or defaults.server_image(),
        "imagePullPolicy": spec.image_pull_policy.value,
        "command": ["cairn-serve"],
        "args": _server_args(target, port, spec.grpc_port),
        "ports": [
            {"name": "http", "containerPort": port, "protocol": "TCP"},
            *(
                [{"name": "grpc", "containerPort": spec.grpc_port, "protocol": "TCP"}]
                if spec.grpc_port
                else []
            ),
        ],
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", **probe_port},
            "periodSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", **probe_port},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": spec.resources.to_dict() if spec.resources else DEFAULT_RESOURCES,
        "volumeMounts": mounts,
        "securityContext": podsecurity.container_context(read_only_root=True),
    }
    # The pod's own name, for the prediction log's file per pod.
    env: list[Body] = [
        {"name": "CAIRN_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    log = spec.monitoring.log if spec.monitoring else None
    if log is not None:
        claim, directory = prediction_log_place(mdep)
        # The claim's root, writable, as a training pod's: a subPath the kubelet made would be
        # root's, not the server's to write.
        volumes.append(
            {"name": LOG_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": False}}
        )
        container["volumeMounts"].append({"name": LOG_VOLUME, "mountPath": LOG_MOUNT})
        container["args"] += [
            "--log-sample-rate",
            repr(log.sample_rate),
            "--log-dir",
            posixpath.join(LOG_MOUNT, directory),
        ]
        if target.sensitive_features:
            container["args"] += ["--sensitive-features", ",".join(target.sensitive_features)]
    container["env"] = [*env, *(variable.to_dict() for variable in spec.env or [])]
    if uses_object_store(target.artifact_uri):
        given = spec.storage.secret_name if spec.storage else None
        container["envFrom"] = credentials_env_from(given, defaults.storage_secret())
        # Liveness waits for the download: the server listens once the model is loaded.
        container["startupProbe"] = {
            "httpGet": {"path": "/v2/health/live", **probe_port},
            "periodSeconds": 2,
            "failureThreshold": max(1, spec.progress_deadline_seconds // 2),
        }
    pod_spec: Body = {
        "containers": [container],
        "volumes": volumes,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": SHUTDOWN_MAX_DELAY_SECONDS + 30,
        # fsGroup makes the prediction log's claim writable for the server.
        "securityContext": podsecurity.pod_context(),
        **podprocess.process_namespace(),
    }
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    if spec.node_selector:
        pod_spec["nodeSelector"] = spec.node_selector
    if spec.tolerations:
        pod_spec["tolerations"] = [toleration.to_dict() for toleration in spec.tolerations]
    annotations = {ARTIFACT_ANNOTATION: target.artifact_uri, DIGEST_ANNOTATION: target.digest}
    return with_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": deployment_name(name, track),
                "namespace": mdep.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {
                "replicas": replicas,
                # The selector is immutable: it names the track, never the version.
                "selector": {"matchLabels": {DEPLOYMENT_LABEL: name, TRACK_LABEL: track}},
                "progressDeadlineSeconds": spec.progress_deadline_seconds,
                "revisionHistoryLimit": 2,
                # A new version replaces pods one ready pod at a time: capacity never drops.
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
                },
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {
                            **annotations,
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(port),
                            "prometheus.io/path": "/metrics",
                        },
                    },
                    "spec": pod_spec,
                },
            },
        }
    )


def build_service(mdep: ModelDeployment, track: str | None = None, routed: bool = False) -> Body:
    """The ModelDeployment's Service (track None), or one track's Service (for an HTTPRoute).

    Without a router the main Service selects both tracks, so requests split by the ratio of
    ready pods; with one (`routed`) it selects the stable track, and the route splits."""
    spec, name = mdep.spec, mdep.name
    port = spec.port
    chosen = pod_labels(name, track or STABLE if track is not None or routed else None)
    return with_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": track_service_name(name, track) if track else service_name(name),
                "namespace": mdep.namespace,
                "labels": {DEPLOYMENT_LABEL: name, MODEL_LABEL: spec.model},
            },
            "spec": {
                "type": "ClusterIP",
                "selector": chosen,
                "ports": [
                    {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"},
                    *(
                        [
                            {
                                "name": "grpc",
                                "port": spec.grpc_port,
                                "targetPort": "grpc",
                                "protocol": "TCP",
                                "appProtocol": "grpc",
                            }
                        ]
                        if spec.grpc_port
                        else []
                    ),
                ],
            },
        }
    )


def manifest_hash(manifest: Body) -> str:
    """A digest of what the operator asks for, kept on the object to skip writes that change
    nothing."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_hash(manifest: Body) -> Body:
    annotations = manifest["metadata"].setdefault("annotations", {})
    annotations.pop(MANIFEST_HASH_ANNOTATION, None)
    annotations[MANIFEST_HASH_ANNOTATION] = manifest_hash(manifest)
    return manifest


def needs_apply(desired: Body, observed: Body | None) -> bool:
    if observed is None:
        return True
    want = desired["metadata"]["annotations"][MANIFEST_HASH_ANNOTATION]
    have = (observed["metadata"].get("annotations") or {}).get(MANIFEST_HASH_ANNOTATION)
    return bool(want != have)
