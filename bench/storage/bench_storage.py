"""bench-storage: what the model server's path from an object store costs over a plain download.

Against the local cluster's SeaweedFS (hack/storage/up.sh), from this machine through the
Service's ClusterIP, with a model directory of about 200 MB (a k-nearest-neighbours classifier
keeps its training data: 3.2 million rows of 8 float64 features):

- raw: boto3's own `download_file` of each of the directory's objects (its default transfer
  settings), into an empty directory: the floor for getting the bytes here;
- model fetch: what cairn-serve does before it serves: `cairn.serving.fetch` (download into an
  empty model cache, hashing as it writes, digest checked) and `cairn.serving.model.load`
  (unpickle, signature, runtime sklearn);
- cache hit: the same with the version already in the node's cache (the digest is verified
  again, by reading the files, then the model is unpickled): what a second pod or a restart pays.
  A whole `cairn-serve` process started on a cache hit, until /v2/health/ready answers 200, is
  printed too (it adds the interpreter's imports of ONNX Runtime, scikit-learn and gRPC).

Each measurement is repeated (--repeat, median kept), raw and fetch interleaved so both see the
same load on the machine, taking turns at going first. The last line is for scripts:

    model_fetch_ratio_to_raw_download=X.XX cache_hit_start_s=Y.Y
"""

import argparse
import base64
import functools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests
from kubernetes import client, config
from sklearn.neighbors import KNeighborsClassifier  # type: ignore[import-untyped]

from cairn.serving.fetch import fetch
from cairn.serving.model import load
from cairn.storage.s3 import client as s3_client
from cairn.training import TrainingSession

STORE_NAMESPACE = "cairn-storage"
STORE_SERVICE = "seaweedfs"
STORE_SECRET = "seaweedfs-s3"
PORT = 8333
ROWS, FEATURES = 3_200_000, 8


def store_environ() -> dict[str, str]:
    """The AWS variables that reach the local object store from this machine."""
    config.load_kube_config()
    core = client.CoreV1Api()
    secret = core.read_namespaced_secret(STORE_SECRET, STORE_NAMESPACE).data
    ip = core.read_namespaced_service(STORE_SERVICE, STORE_NAMESPACE).spec.cluster_ip
    return {
        "AWS_ACCESS_KEY_ID": base64.b64decode(secret["AWS_ACCESS_KEY_ID"]).decode(),
        "AWS_SECRET_ACCESS_KEY": base64.b64decode(secret["AWS_SECRET_ACCESS_KEY"]).decode(),
        "AWS_ENDPOINT_URL_S3": f"http://{ip}:{PORT}",
        "AWS_REGION": "us-east-1",
    }


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_start(uri: str, digest: str, cache: Path) -> float:
    """Seconds from starting cairn-serve (cache hit) to its readiness answering 200."""
    port = free_port()
    command = [
        sys.executable, "-m", "cairn.serving", "--model-uri", uri, "--expected-digest", digest,
        "--cache-dir", str(cache), "--name", "big", "--runtime", "sklearn",
        "--host", "127.0.0.1", "--port", str(port), "--grpc-port", "0",
    ]  # fmt: skip
    http = requests.Session()
    http.trust_env = False
    started = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < 120:
            try:
                if http.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).ok:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"cairn-serve exited with {server.returncode}")
            time.sleep(0.02)
        raise RuntimeError("cairn-serve was not ready within 120 s")
    finally:
        server.terminate()
        server.wait(timeout=60)


def raw_download(s3: Any, bucket: str, keys: list[str], target: Path) -> None:
    target.mkdir()
    for key in keys:
        s3.download_file(bucket, key, str(target / Path(key).name))


def fetch_and_load(uri: str, digest: str, cache: Path) -> bool:
    """What cairn-serve does before it serves; returns whether the cache had the version."""
    got = fetch(uri, digest, cache)
    load(got.directory, "big", "1", expected_digest=digest, runtime="sklearn", hashed=got.manifest)
    return got.cache_hit


def save_big_model(uri: str, saved: Path) -> tuple[str, int, float]:
    """A ~200 MB model saved and uploaded by the SDK: (digest, size, seconds)."""
    rng = np.random.default_rng(0)
    features = rng.random((ROWS, FEATURES))
    model = KNeighborsClassifier(algorithm="brute").fit(features, rng.integers(0, 3, ROWS))
    session = TrainingSession(
        {"CAIRN_OUTPUT_DIR": str(saved), "CAIRN_OUTPUT_URI": uri}, finish_at_exit=False
    )
    seconds = timed(lambda: session.save_model(model, sample_input=features[:1]))
    artifact = json.loads(session.summary())["artifact"]
    return artifact["digest"], artifact["size"], seconds


def empty_bucket(s3: Any, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objects: list[Any] = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    s3.delete_bucket(Bucket=bucket)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="measurements of each (median)")
    args = parser.parse_args()
    os.environ.update(store_environ())
    s3 = s3_client()
    bucket = f"bench-storage-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    work = Path(tempfile.mkdtemp(prefix="cairn-bench-storage-"))
    try:
        uri = f"s3://{bucket}/big/v1"
        digest, size, upload_s = save_big_model(uri, work / "saved")
        keys = [f"big/v1/{p.name}" for p in sorted((work / "saved").iterdir())]
        print(f"model directory: {size / 1e6:.1f} MB in {len(keys)} objects, {uri}")
        print(f"save and upload (multipart, hashed as sent): {upload_s:.2f}s")

        raw: list[float] = []
        fetched: list[float] = []
        hits: list[float] = []
        for attempt in range(args.repeat):
            target, cache = work / f"raw-{attempt}", work / f"cache-{attempt}"
            download = functools.partial(raw_download, s3, bucket, keys, target)
            fetch_load = functools.partial(fetch_and_load, uri, digest, cache)
            # Taking turns at going first: neither always follows the other's writes.
            if attempt % 2:
                fetched.append(timed(fetch_load))
                raw.append(timed(download))
            else:
                raw.append(timed(download))
                fetched.append(timed(fetch_load))
            shutil.rmtree(target)
            started = time.perf_counter()
            if not fetch_and_load(uri, digest, cache):
                raise RuntimeError("the second fetch of the version was not a cache hit")
            hits.append(time.perf_counter() - started)
            if attempt:
                shutil.rmtree(cache)  # the first stays, for the server started below
            print(
                f"  round {attempt + 1}: raw download {raw[-1]:.2f}s, model fetch (download, "
                f"digest, load) {fetched[-1]:.2f}s, cache hit (digest, load) {hits[-1]:.2f}s"
            )
        process = serve_start(uri, digest, work / "cache-0")
        raw_s, fetch_s, hit_s = (statistics.median(v) for v in (raw, fetched, hits))
        print(f"raw boto3 download: {raw_s:.2f}s ({size / raw_s / 1e6:.0f} MB/s)")
        print(f"model fetch + load: {fetch_s:.2f}s ({size / fetch_s / 1e6:.0f} MB/s)")
        print(f"cache hit, digest + load: {hit_s:.2f}s")
        print(f"cairn-serve start to ready on a cache hit (imports included): {process:.1f}s")
        print(
            f"model_fetch_ratio_to_raw_download={fetch_s / raw_s:.2f} cache_hit_start_s={hit_s:.1f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        empty_bucket(s3, bucket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
