"""Objects of every kind drawn from the CRDs' own schemas (tests/support/fuzz.py), applied to the
real API server with the operator running: each is refused there, naming a field, or reconciled
into a status with conditions. Never an operator crash or a reconcile that raises, never a hot
loop, never a pod outside the restricted Pod Security Standard.

The namespace has a ResourceQuota of zero pods: hundreds of runs and deployments must not start
hundreds of pods on the test machine, and a refused pod is one more fault the operator must
report. CAIRN_FUZZ_EXAMPLES objects per kind (default 500), drawn with CAIRN_FUZZ_SEED (printed;
set it to replay a failure).
"""

import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fuzz import drawn
from tests.support.kube import Kube
from tests.support.operator import RunningOperator
from tests.support.training import GROUP, VERSION
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
CRDS = Path(__file__).resolve().parents[2] / "crds"
EXAMPLES = int(os.environ.get("CAIRN_FUZZ_EXAMPLES", "500"))
SEED = int(os.environ.get("CAIRN_FUZZ_SEED") or random.randrange(2**32))
SETTLE_TIMEOUT = 240
QUIET_SECONDS = 30
# The shortest resync of any kind is 10 s: over QUIET_SECONDS an object that nothing changes is
# reconciled at most this many times, plus one for an event that arrives meanwhile.
RECONCILES_PER_OBJECT_MAX = QUIET_SECONDS / 10 + 1
KINDS = {
    "TrainingRun": "trainingruns",
    "Model": "models",
    "ModelVersion": "modelversions",
    "ModelDeployment": "modeldeployments",
    "ContinuousTraining": "continuoustrainings",
}
PREFIXES = {"TrainingRun": "tr", "Model": "m", "ModelDeployment": "md", "ContinuousTraining": "ct"}


def name_for(kind: str, number: int, spec: Body) -> str:
    """A ModelVersion must be named <model>-v<version> (a rule of the API server's); the others
    are numbered."""
    if kind == "ModelVersion":
        return f"{spec.get('model')}-v{spec.get('version')}"[:253]
    return f"{PREFIXES[kind]}-{number}"


def reconciles(operator: RunningOperator) -> Counter[tuple[str, str]]:
    text = requests.get(operator.metrics_url, timeout=10).text
    counted: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == "cairn_operator_reconciles":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counted[(sample.labels["kind"], sample.labels["result"])] = int(sample.value)
    return counted


@pytest.mark.timeout(1200)
def test_fuzzed_objects_are_refused_or_reconciled_never_crash_or_loop(
    k8s: Kube, namespace: str, operator: RunningOperator
) -> None:
    print(f"CAIRN_FUZZ_SEED={SEED} CAIRN_FUZZ_EXAMPLES={EXAMPLES}")
    # The operator's counters belong to the test process and add up over its earlier tests.
    at_start = reconciles(operator)
    k8s.core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    accepted: dict[str, list[str]] = {kind: [] for kind in KINDS}
    refused: Counter[str] = Counter()
    for kind, plural in KINDS.items():
        for number, spec in enumerate(drawn(CRDS / f"{GROUP}_{plural}.yaml", EXAMPLES, SEED)):
            name = name_for(kind, number, spec)
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": kind,
                "metadata": {"name": name},
                "spec": spec,
            }
            try:
                k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
            except ApiException as error:
                if error.status == 409 and kind == "ModelVersion":
                    continue  # drawn twice with the same model and version: one is enough
                # Refused for what it holds, naming the field: never a server error.
                assert error.status == 422, (kind, spec, error.status, error.body)
                assert "spec" in str(error.body), (kind, spec, error.body)
                refused[kind] += 1
            else:
                accepted[kind].append(name)
    print("accepted:", {k: len(v) for k, v in accepted.items()}, "refused:", dict(refused))
    assert all(accepted.values()), f"a kind with nothing accepted tests nothing: {accepted}"

    def without_status() -> list[str]:
        missing = []
        for kind, plural in KINDS.items():
            listed = k8s.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
            for item in listed["items"]:
                if not (item.get("status") or {}).get("conditions"):
                    missing.append(f"{kind}/{item['metadata']['name']}")
        return missing

    # Every accepted object reconciled into a status that says what is what.
    wait_for(
        lambda: not without_status(),
        timeout=SETTLE_TIMEOUT,
        interval=5,
        message="every accepted object to have status conditions",
        describe=lambda: f"without: {without_status()[:20]}",
    )

    # At rest nothing loops: reconciles over a quiet spell stay within the resyncs.
    before = reconciles(operator)
    time.sleep(QUIET_SECONDS)
    after = reconciles(operator)
    total = sum(len(names) for names in accepted.values())
    for kind in KINDS:
        done = after[(kind, "success")] - before[(kind, "success")]
        count = len(accepted[kind])
        assert done <= count * RECONCILES_PER_OBJECT_MAX, (kind, done, count)
    raised = after - at_start  # Counter subtraction keeps the positive differences
    errors = {kind: n for (kind, result), n in raised.items() if result == "error"}
    assert not errors, f"reconciles that raised: {errors} (of {total} objects)"

    # No pod of the namespace, and none refused for Pod Security: only the quota refused pods.
    assert not k8s.core.list_namespaced_pod(namespace).items
    warnings = k8s.core.list_namespaced_event(namespace).items
    assert not [e.message for e in warnings if "PodSecurity" in (e.message or "")]
