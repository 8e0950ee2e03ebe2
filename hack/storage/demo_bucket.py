"""For `make demo STORE=s3`: empties (or creates) the demo's bucket on the local object store and
gives the demo namespace its Secret cairn-storage, with the store's keys and its endpoint by the
Service's DNS name, as a user would write it. No key is printed.

    python3 demo_bucket.py NAMESPACE BUCKET ENDPOINT
"""

import base64
import json
import subprocess
import sys
from typing import Any

import boto3
from botocore.config import Config

STORE_NAMESPACE = "cairn-storage"
STORE_SECRET = "seaweedfs-s3"


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout


def main(namespace: str, bucket: str, endpoint: str) -> None:
    secret = json.loads(kubectl("-n", STORE_NAMESPACE, "get", "secret", STORE_SECRET, "-o", "json"))
    keys = {name: base64.b64decode(secret["data"][name]).decode() for name in secret["data"]}
    service = json.loads(
        kubectl("-n", STORE_NAMESPACE, "get", "service", "seaweedfs", "-o", "json")
    )
    port = endpoint.rsplit(":", 1)[1]
    s3 = boto3.session.Session().client(
        "s3",
        # This machine is not a pod: it reaches the Service by its ClusterIP.
        endpoint_url=f"http://{service['spec']['clusterIP']}:{port}",
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"}, request_checksum_calculation="when_required"
        ),
    )
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket in existing:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects: list[Any] = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    else:
        s3.create_bucket(Bucket=bucket)
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cairn-storage", "namespace": namespace},
        "stringData": {
            "AWS_ACCESS_KEY_ID": keys["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": keys["AWS_SECRET_ACCESS_KEY"],
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_REGION": "us-east-1",
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    print(f"bucket {bucket} (empty), Secret {namespace}/cairn-storage (endpoint {endpoint})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
