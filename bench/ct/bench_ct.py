"""bench-ct: how punctually the operator starts scheduled runs, with many ContinuousTrainings.

COUNT ContinuousTrainings with a schedule every INTERVAL seconds (six-field cron) and suspended
runs (no pod starts: the benchmark measures the operator, not the node), for SECONDS, with
`cairn-operator` as its own process. A watch on TrainingRuns records when each run appears; its
schedule time is in its name. The lag is from the schedule time to the run's appearance; a
schedule time in the window without its run is missed; two runs for one time are duplicated. The
last line is for scripts:

    ct_schedule_lag_p50_s=<x> ct_schedule_lag_p99_s=<y> missed=<n> duplicated=<n>
    operator_peak_mib=<m>   (one line)
"""

import argparse
import collections
import datetime
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    apply_crds,
    bench_namespace,
    peak_rss_mib,
    quantile,
    start_operator,
    stop_process,
)
from kubernetes import client, config, watch

from cairn.api.labels import TRIGGER_TIME_ANNOTATION

GROUP, VERSION = "cairn.dev", "v1alpha1"
Body = dict[str, Any]


def ct_body(name: str, interval: int) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ContinuousTraining",
        "metadata": {"name": name},
        "spec": {
            "model": name,
            "template": {
                "imagePullPolicy": "Never",
                "command": ["python", "-c", "pass"],
                "suspend": True,
                "register": False,
            },
            "triggers": {"schedule": {"cron": f"*/{interval} * * * * *"}},
            "concurrencyPolicy": "Allow",
        },
    }


def claim(namespace: str, core: Any) -> None:
    """The artifacts claim runs wait for; they are suspended (no Job), so it never binds."""
    core.create_namespaced_persistent_volume_claim(
        namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="cairn-artifacts"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                storage_class_name="",
                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Mi"}),
            ),
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--interval", type=int, default=10, help="seconds between schedule times")
    parser.add_argument("--seconds", type=float, default=120, help="how long to measure")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config.load_kube_config()
    core: Any = client.CoreV1Api()
    custom: Any = client.CustomObjectsApi()
    apply_crds()
    namespace = bench_namespace(core, "bench-ct")
    claim(namespace, core)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"{namespace}-operator.log"
    operator = start_operator(namespace, log)

    appeared: dict[str, float] = {}  # run name → wall-clock time it was first seen
    decided: dict[str, float] = {}  # run name → when the operator's reconcile decided on it
    done = threading.Event()

    def watch_runs() -> None:
        # A watch ends when the API server closes it (or a burst overflows it): start again from
        # the last version seen, so that no run created meanwhile goes untimed.
        version = None
        while not done.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    "trainingruns",
                    resource_version=version,
                    timeout_seconds=60,
                ):
                    meta = event["object"]["metadata"]
                    version = meta.get("resourceVersion", version)
                    if event["type"] == "ADDED":
                        appeared.setdefault(meta["name"], time.time())
                        at = (meta.get("annotations") or {}).get(TRIGGER_TIME_ANNOTATION)
                        if at:
                            decided[meta["name"]] = datetime.datetime.fromisoformat(at).timestamp()
                    if done.is_set():
                        break
            except client.ApiException:
                version = None  # too old: list again (ADDED for every run, first times kept)
            finally:
                stream.stop()

    watcher = threading.Thread(target=watch_runs, daemon=True)
    watcher.start()
    time.sleep(1)
    try:
        names = [f"ct-{index:04d}" for index in range(args.count)]
        for name in names:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "continuoustrainings", ct_body(name, args.interval)
            )
        # The window: whole schedule periods after every ContinuousTraining exists and a first
        # period has passed.
        start = (int(time.time()) // args.interval + 2) * args.interval
        end = start + int(args.seconds)
        while time.time() < end + 2 * args.interval:
            time.sleep(1)
        peak = peak_rss_mib(operator.pid)
        # What exists decides missed and duplicated; the watch, which can drop events in a
        # burst, only times the runs it saw.
        listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trainingruns")
        existing = [item["metadata"]["name"] for item in listed["items"]]
    finally:
        done.set()
        stop_process(operator)
        core.delete_namespace(namespace)

    expected = [(name, moment) for name in names for moment in range(start, end + 1, args.interval)]
    by_time: dict[tuple[str, int], int] = collections.Counter()
    for run in existing:
        ct, _, moment = run.rpartition("-schedule-")
        if moment.isdigit():
            by_time[(ct, int(moment))] += 1
    lags: list[float] = []
    waits: list[float] = []  # the part of the lag before the reconcile that created the run
    for run, seen in appeared.items():
        _, _, moment = run.rpartition("-schedule-")
        if moment.isdigit() and start <= int(moment) <= end:
            lags.append(seen - int(moment))
            if run in decided:
                waits.append(decided[run] - int(moment))
    unseen = sum(1 for key in expected if key in by_time) - len(lags)
    missed = sum(1 for key in expected if key not in by_time)
    duplicated = sum(count - 1 for count in by_time.values() if count > 1)
    p50, p99 = quantile(lags, 0.5), quantile(lags, 0.99)
    print(
        f"{args.count} ContinuousTrainings, a schedule every {args.interval}s, {args.seconds:g}s "
        f"measured: {len(expected)} schedule times, {len(lags)} runs started in the window "
        f"timed ({unseen} not seen by the watch)"
    )
    print(f"{'measure':<36}{'p50 s':>10}{'p99 s':>10}{'max s':>10}")
    print(f"{'schedule time -> run created':<36}{p50:>10.3f}{p99:>10.3f}{max(lags):>10.3f}")
    if waits:
        print(
            f"{'  of which until its reconcile':<36}{quantile(waits, 0.5):>10.3f}"
            f"{quantile(waits, 0.99):>10.3f}{max(waits):>10.3f}"
        )
    print(f"missed {missed}, duplicated {duplicated}; operator peak RSS {peak:.0f} MiB")
    print("targets: p99 <= 2 s, 0 missed, 0 duplicated, <= 300 MiB")
    print(
        f"ct_schedule_lag_p50_s={p50:.3f} ct_schedule_lag_p99_s={p99:.3f} missed={missed} "
        f"duplicated={duplicated} operator_peak_mib={peak:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
