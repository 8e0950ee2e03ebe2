"""The operator process is killed (SIGKILL, no clean stop) while runs are in flight: after each
restart every run converges, and no version number is duplicated or lost."""

import datetime
import itertools
import time
from pathlib import Path

import pytest

from tests.support.kube import Kube, read_or_none
from tests.support.operator import OperatorProcess
from tests.support.training import (
    TREE_TRAINER,
    condition,
    create_run,
    get,
    script_config_map,
    version_numbers,
    wait_for_run,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

RUNS = 8


def registered_count(k8s: Kube, namespace: str) -> int:
    runs = [get(k8s, namespace, "trainingruns", f"crash-{i}") or {} for i in range(RUNS)]
    return sum(condition(run, "Registered").get("status") == "True" for run in runs)


def test_runs_converge_without_duplicates_across_operator_kills(
    k8s: Kube, namespace: str, artifacts: Path, operator_process: OperatorProcess
) -> None:
    script_config_map(k8s, namespace, "tiny", TREE_TRAINER)
    operator_process.start()
    for i in range(RUNS):
        create_run(k8s, namespace, f"crash-{i}", model="crash", code="tiny")

    # Kill while Jobs are being created, then again while versions are being registered.
    time.sleep(3)
    operator_process.kill()
    operator_process.start()
    wait_for(
        lambda: registered_count(k8s, namespace) >= 1,
        timeout=300,
        message="a first registration",
    )
    operator_process.kill()
    operator_process.start()
    wait_for(
        lambda: registered_count(k8s, namespace) >= RUNS // 2,
        timeout=300,
        message="half of the runs registered",
    )
    operator_process.kill()
    operator_process.start()

    runs = [
        wait_for_run(k8s, namespace, f"crash-{i}", "Succeeded", timeout=300, registered=True)
        for i in range(RUNS)
    ]
    assert sorted(run["status"]["version"] for run in runs) == list(range(1, RUNS + 1))
    assert version_numbers(k8s, namespace, "crash") == list(range(1, RUNS + 1))
    # The Model follows its versions on its own reconcile, a moment after the last one appears.
    wait_for(
        lambda: (
            ((get(k8s, namespace, "models", "crash") or {}).get("status") or {}).get(
                "latestVersion"
            )
            == RUNS
        ),
        timeout=120,
        message=f"the Model's latestVersion to reach {RUNS}",
        describe=lambda: str((get(k8s, namespace, "models", "crash") or {}).get("status")),
    )
    jobs = k8s.batch.list_namespaced_job(namespace, label_selector="cairn.dev/model=crash")
    assert len(jobs.items) == RUNS  # one Job per run: none created twice

    # Uninstalled or crashed, the operator must not hold anything hostage: with it stopped, the
    # namespace and every Cairn object in it can still be deleted (no finalizer of ours remains).
    operator_process.kill()
    k8s.core.delete_namespace(namespace)
    wait_for(
        lambda: read_or_none(k8s.core.read_namespace, namespace) is None,
        timeout=120,
        message=f"namespace {namespace} to be deleted while the operator is stopped",
    )


def run_creations(k8s: Kube, namespace: str, ct: str) -> list[tuple[int, float]]:
    """(schedule time, creation time) of each run the ContinuousTraining started, by time; the
    schedule time from the run's name."""
    listing = k8s.custom.list_namespaced_custom_object(
        "cairn.dev",
        "v1alpha1",
        namespace,
        "trainingruns",
        label_selector=f"cairn.dev/continuous-training={ct}",
    )
    names = [item["metadata"]["name"] for item in listing["items"]]
    assert all("-schedule-" in name for name in names), names
    return sorted(
        (
            int(item["metadata"]["name"].rsplit("-", 1)[1]),
            datetime.datetime.fromisoformat(item["metadata"]["creationTimestamp"]).timestamp(),
        )
        for item in listing["items"]
    )


def schedule_times(k8s: Kube, namespace: str, ct: str) -> list[int]:
    """The schedule time of each run the ContinuousTraining started."""
    return [time_ for time_, _ in run_creations(k8s, namespace, ct)]


def scheduled(k8s: Kube, namespace: str, name: str) -> None:
    body = {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "ContinuousTraining",
        "metadata": {"name": name},
        "spec": {
            "model": name,
            "template": {"command": ["python", "-c", "pass"], "suspend": True},
            "triggers": {"schedule": {"cron": "*/10 * * * * *"}},
            "concurrencyPolicy": "Allow",
        },
    }
    k8s.custom.create_namespaced_custom_object(
        "cairn.dev", "v1alpha1", namespace, "continuoustrainings", body
    )


def test_schedule_times_missed_while_the_operator_was_down_start_one_catch_up_run(
    k8s: Kube, namespace: str, operator_process: OperatorProcess
) -> None:
    operator_process.start()
    scheduled(k8s, namespace, "nightly")
    wait_for(
        lambda: schedule_times(k8s, namespace, "nightly"),
        timeout=60,
        message="a first scheduled run",
    )
    operator_process.kill()
    stopped = time.time()
    before = schedule_times(k8s, namespace, "nightly")
    time.sleep(35)  # three schedule times pass with nobody looking
    operator_process.start()
    wait_for(
        lambda: len(schedule_times(k8s, namespace, "nightly")) > len(before),
        timeout=60,
        message="the catch-up run",
    )
    # The restarted operator's first reconcile starts one run, for the latest schedule time by
    # then; every time it passed over (the three while it was down, and any that came while it
    # started) is left. The first new run's creation bounds when that reconcile happened.
    first_new = min(
        created for time_, created in run_creations(k8s, namespace, "nightly") if time_ > before[-1]
    )
    caught_up = [t for t in schedule_times(k8s, namespace, "nightly") if stopped < t <= first_new]
    assert len(caught_up) == 1, caught_up  # one run for the latest time, none for the rest

    def missed_events() -> list[str]:
        listed = k8s.core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=nightly"
        ).items
        return [e.message for e in listed if e.reason == "MissedSchedule"]

    # Posted once the status records the catch-up run, just after the run appears.
    missed = wait_for(missed_events, timeout=30, message="the MissedSchedule Event")
    assert len(missed) == 1 and "started one run for the latest" in missed[0]
    assert missed[0].count("T") >= 2  # the missed times are listed


def test_a_kill_right_after_a_scheduled_run_is_created_never_starts_it_twice(
    k8s: Kube, namespace: str, operator_process: OperatorProcess
) -> None:
    operator_process.start()
    scheduled(k8s, namespace, "hourly")
    for _ in range(3):
        count = len(schedule_times(k8s, namespace, "hourly"))

        def new_run(after: int = count) -> bool:
            return len(schedule_times(k8s, namespace, "hourly")) > after

        # Killed the moment a new run appears: before its ContinuousTraining's status records it.
        wait_for(new_run, timeout=30, interval=0.05, message="a new scheduled run")
        operator_process.kill()
        operator_process.start()

    def counted() -> list[int] | None:
        """The runs, once the restarted operator's status counts each of them exactly once."""
        ct = get(k8s, namespace, "continuoustrainings", "hourly") or {}
        times = schedule_times(k8s, namespace, "hourly")
        return times if (ct.get("status") or {}).get("runsStarted") == len(times) else None

    times = wait_for(counted, timeout=60, message="status.runsStarted counting every run once")
    # Every run is a schedule time's (schedule_times checks the names), one per time, none
    # skipped: a restart at the worst moment repeated its decision and found the run it made.
    assert {b - a for a, b in itertools.pairwise(times)} == {10}, times
