"""The local cluster's S3-compatible object store (hack/storage/up.sh: SeaweedFS in the namespace
cairn-storage), as tests use it: from this machine through the Service's ClusterIP, from pods by
its DNS name, with the keys of the Secret the script generated."""

import base64
import dataclasses
import re
import subprocess
import uuid
from typing import Any

import boto3
from botocore.config import Config

from tests.support.cluster import REPO_ROOT, _exclusive
from tests.support.kube import Kube

NAMESPACE = "cairn-storage"
SERVICE = "seaweedfs"
SECRET = "seaweedfs-s3"
PORT = 8333
IN_CLUSTER_ENDPOINT = f"http://{SERVICE}.{NAMESPACE}.svc:{PORT}"
UP_TIMEOUT = 30 * 60  # a first run builds SeaweedFS from source


class ObjectStoreUnavailable(Exception):
    """hack/storage/up.sh failed; the message has its output."""


@dataclasses.dataclass(frozen=True)
class ObjectStore:
    host_endpoint: str  # http://<ClusterIP>:8333, for this machine
    access_key: str
    secret_key: str

    def client(self, secret_key: str | None = None) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.host_endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def environ(self) -> dict[str, str]:
        """The AWS variables of this machine's clients (cairn.storage.s3 reads them)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL_S3": self.host_endpoint,
            "AWS_REGION": "us-east-1",
        }

    def create_bucket(self, hint: str = "test") -> str:
        cleaned = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].strip("-")
        name = f"{cleaned or 'test'}-{uuid.uuid4().hex[:8]}"
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        s3 = self.client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys})
        s3.delete_bucket(Bucket=name)

    def credentials_secret(
        self,
        name: str,
        *,
        endpoint: str = IN_CLUSTER_ENDPOINT,
        secret_key: str | None = None,
    ) -> dict[str, Any]:
        """A Secret for pods, as a user writes one: the AWS variables, the endpoint by name."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {
                "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": secret_key or self.secret_key,
                "AWS_ENDPOINT_URL_S3": endpoint,
                "AWS_REGION": "us-east-1",
            },
        }


def ensure_object_store(k8s: Kube) -> ObjectStore:
    """Start (or find) the local object store and read its keys; one caller at a time."""
    with _exclusive("cairn-storage-up.lock"):
        done = subprocess.run(
            [str(REPO_ROOT / "hack/storage/up.sh")],
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    if done.returncode != 0:
        raise ObjectStoreUnavailable(f"hack/storage/up.sh failed:\n{done.stdout}\n{done.stderr}")
    secret = k8s.core.read_namespaced_secret(SECRET, NAMESPACE)
    data = {key: base64.b64decode(value).decode() for key, value in secret.data.items()}
    ip = k8s.core.read_namespaced_service(SERVICE, NAMESPACE).spec.cluster_ip
    return ObjectStore(
        host_endpoint=f"http://{ip}:{PORT}",
        access_key=data["AWS_ACCESS_KEY_ID"],
        secret_key=data["AWS_SECRET_ACCESS_KEY"],
    )
