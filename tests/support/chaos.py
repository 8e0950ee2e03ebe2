"""Chaos campaigns: faults injected at seeded random moments of one whole workload (runs trained
and registered, one of them started by a ContinuousTraining's retrain request, a version
served, an alias move rolled out through a canary under traffic, then a broken version's canary
rolled back), and the invariants checked once it has converged."""

import collections
import contextlib
import dataclasses
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from urllib3.util.retry import Retry

from tests.support.cluster import REPO_ROOT
from tests.support.deployments import (
    create_deployment,
    create_version,
    service_base,
    wait_serving,
    wait_version_phase,
)
from tests.support.kube import Kube
from tests.support.readiness import Spell, unready_spells
from tests.support.retraining import create_ct, retrain, runs_of
from tests.support.rollouts import (
    ANALYSIS,
    SETOSA,
    VIRGINICA,
    Traffic,
    canary_spec,
    save_broken_version,
    status_of,
    traffic,
)
from tests.support.training import (
    GROUP,
    TREE_TRAINER,
    VERSION,
    create_model,
    create_run,
    get,
    kubectl,
    script_config_map,
    version_numbers,
    wait_for_phase,
    wait_for_run,
)
from tests.support.wait import wait_for

Body = dict[str, Any]
USER_RUNS = 4  # TrainingRuns the user creates, chaos-1..4
REQUESTED_RUN = "iris-request-1"  # and the one the ContinuousTraining starts on a request
RUNS = USER_RUNS + 1  # versions 1..RUNS, in whatever order they register
BAD_VERSION = RUNS + 1  # registered by hand: answers 500 to virginica rows
TIMEOUT = 600
RESTART = REPO_ROOT / "hack/localkube/restart.sh"
# The canary's pause: long enough for a fault to land while a canary is in flight.
CANARY_PAUSE = "15s"
# After a control-plane fault has ended and the EndpointSlice watches are back, how long
# kube-proxy may take to catch up with the endpoints that changed while it was away.
ENDPOINTS_CATCH_UP_SECONDS = 5.0
# How long the EndpointSlice watches (kube-proxy's, the EndpointSlice controller's, CoreDNS's) may
# take to come back after the API server restarted: client-go's reflectors back off to 30 s
# between tries, and a restarted API server refuses watches until its watch cache is ready, so
# after restarts in a row they took up to 85 s, and more than 90 s three times in 60 faults.
# Until then kube-proxy is blind: the stall lasts as long.
WATCHES_BACK_SECONDS = 180.0


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[], None]  # returns once the fault is over (the component is back)
    # While the API server or etcd is away, no endpoint change reaches kube-proxy: a pod that
    # ended meanwhile (scaled down by a step the operator took just before) keeps its traffic,
    # which is refused. That is Kubernetes', not the operator's: such losses are counted apart.
    stalls_endpoints: bool = False
    # A restarted kubelet reports every container with a readiness probe unready until its
    # first probe has run (kubernetes/kubernetes#100277, open): for tens of milliseconds, but
    # kube-proxy applies the empty endpoint set at once and the next one no sooner than its
    # --iptables-min-sync-period (1 s), so a Service whose pods all run on the node refuses
    # connections meanwhile. Also Kubernetes': counted apart, around each such spell seen.
    resets_readiness: bool = False


ENDPOINTS_STALLED = "endpoint changes stalled"
READINESS_RESET = "kubelet restart reset readiness"
# How long after a kubelet restart its first pod sync may report the reset (about a second on a
# quiet node), and how long after a spell kube-proxy may still refuse: its minimum sync period,
# and a connection caught between its two rule sets failing its ARP lookup (3 s).
RESET_REPORTED_WITHIN_SECONDS = 30.0
RESET_REFUSALS_SECONDS = 5.0


class RandomFaults:
    """Injects faults one after another while a workload holds them `active()`, each started a
    random gap after the last one ended, until closed or `count` have been injected. The order
    is a seeded shuffle of the kinds repeated, so that every kind gets its share."""

    def __init__(
        self, faults: list[Fault], count: int, seed: int, gap: tuple[float, float]
    ) -> None:
        self.random, self.gap = random.Random(seed), gap
        order = (faults * -(-count // len(faults)))[:count]
        self.random.shuffle(order)
        self.pending = order
        self.injected: list[str] = []
        self.events: list[tuple[float, str]] = []  # (time.time(), what): a failure's timeline
        self.stalls: list[tuple[float, float]] = []  # when endpoint changes could not propagate
        self.restarts: list[tuple[float, float]] = []  # kubelet restarts: (began, over)
        self.error: BaseException | None = None
        self._active, self._stop = threading.Event(), threading.Event()
        self._injecting = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while self.pending and not self._stop.is_set():
                if not self._active.wait(timeout=0.5):
                    continue
                if self._stop.wait(self.random.uniform(*self.gap)):
                    return
                with self._injecting:
                    if self._active.is_set():
                        fault = self.pending.pop(0)
                        began = time.time()
                        self.note(f"{fault.name} begins")
                        fault.inject()
                        self.note(f"{fault.name} over")
                        self.injected.append(fault.name)
                        if fault.stalls_endpoints:
                            self.stalls.append((began, time.time() + ENDPOINTS_CATCH_UP_SECONDS))
                        if fault.resets_readiness:
                            self.restarts.append((began, time.time()))
        except BaseException as error:  # raised by close(): a failed injection fails the test
            self.error = error

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Faults may strike inside the block; on leaving it, a fault in progress has ended."""
        self._active.set()
        try:
            yield
        finally:
            self._active.clear()
            with self._injecting:
                pass
            self._raise_error()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No fault strikes inside the block (one under way ends first): for a fault of the
        test's own, whose effect must be seen alone."""
        with self._injecting:
            yield

    def note(self, event: str) -> None:
        """Something to place on the timeline a failure is reported with."""
        self.events.append((time.time(), event))

    def excused_failures(self, failed_at: list[float], spells: Sequence[Spell]) -> dict[str, int]:
        """How many of the failed requests each excuse covers."""
        excuses = (self.excuse(moment, spells) for moment in failed_at)
        return dict(collections.Counter(filter(None, excuses)))

    def timeline(self, failed_at: list[float], spells: Sequence[Spell]) -> str:
        """The faults, the test's own events, the unready spells and the bursts of failed
        requests, in order."""
        lines = list(self.events)
        for since, until, pod in spells:
            lasted = f"{until - since:.2f}s" if until is not None else "until the end"
            lines.append((since, f"{pod} reported unready for {lasted}"))
        for burst in bursts(failed_at):
            lines.append(
                (burst[0], f"{len(burst)} requests failed over {burst[-1] - burst[0]:.1f}s")
            )
        lines.sort()
        start = lines[0][0] if lines else 0.0
        return "; ".join(f"+{moment - start:.1f}s {what}" for moment, what in lines)

    def excuse(self, moment: float, spells: Sequence[Spell]) -> str | None:
        """Why a request refused at `moment` is Kubernetes' doing, or None: a violation.
        `spells`: when serving pods were reported unready with no deletion under way."""
        if any(began <= moment <= ended for began, ended in self.stalls):
            return ENDPOINTS_STALLED
        for since, until, _ in spells:
            after_restart = any(
                began <= since <= over + RESET_REPORTED_WITHIN_SECONDS
                for began, over in self.restarts
            )
            ended = until if until is not None else since
            if after_restart and since - 1 <= moment <= ended + RESET_REFUSALS_SECONDS:
                return READINESS_RESET
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=300)
        self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise AssertionError(f"a fault could not be injected: {self.error}") from self.error

    def summary(self) -> str:
        counts = {name: self.injected.count(name) for name in dict.fromkeys(self.injected)}
        return ", ".join(f"{name}: {n}" for name, n in counts.items()) or "none"


def bursts(moments: list[float], gap: float = 2.0) -> list[list[float]]:
    """`moments` (sorted) split where more than `gap` seconds pass between two."""
    found: list[list[float]] = []
    for moment in moments:
        if found and moment - found[-1][-1] <= gap:
            found[-1].append(moment)
        else:
            found.append([moment])
    return found


def restart_component(component: str, seconds_down: float) -> Fault:
    """A component of the local cluster stopped, left down, and started again (restart.sh)."""

    stalls = component in ("kube-apiserver", "etcd")

    def inject() -> None:
        watching = (endpoint_watches() or 0) if stalls else 0
        done = subprocess.run(
            [str(RESTART), component, str(seconds_down)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"restart.sh {component} exited {done.returncode}: {done.stderr}")
        # The API server is ready before its watchers have reconnected: until kube-proxy's watch
        # is back, a pod deleted (or scaled down) keeps its endpoint, whatever its grace period.
        # The fault lasts until then, so that no fault of the test's own starts before.
        back = time.monotonic()
        with contextlib.suppress(TimeoutError):
            wait_for(
                lambda: (endpoint_watches() or 0) >= watching,
                timeout=WATCHES_BACK_SECONDS,
                message="the EndpointSlice watches to come back",
            )
        if stalls:
            print(
                f"{component} ready; its {watching} EndpointSlice watches back after "
                f"{time.monotonic() - back:.1f}s more"
            )

    return Fault(
        f"{component} down {seconds_down:g}s",
        inject,
        stalls_endpoints=stalls,
        resets_readiness=component == "kubelet",
    )


def endpoint_watches() -> int | None:
    """How many watches of EndpointSlices the API server is serving, from its own metrics; None
    while it does not answer."""
    read = subprocess.run(
        [kubectl(), "get", "--raw", "/metrics"], capture_output=True, text=True, timeout=30
    )
    if read.returncode != 0:
        return None
    return sum(
        int(sample.value)
        for family in text_string_to_metric_families(read.stdout)
        for sample in family.samples
        if sample.name == "apiserver_longrunning_requests"
        and sample.labels.get("resource") == "endpointslices"
        and sample.labels.get("verb") == "WATCH"
    )


def patient_retries() -> Retry:
    """Retries for the test's own API calls that wait out an API server or etcd that a fault
    took down: connections refused while it restarts, 5xx while etcd is away. Reads are retried
    on any method but POST, whose retry after a lost answer could create twice."""
    return Retry(
        total=None,
        connect=120,
        read=10,
        status=120,
        backoff_factor=0.25,
        backoff_max=1.0,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"PATCH"},
        raise_on_status=False,
    )


def rss_mib(pid: int) -> float:
    """The resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def set_production(k8s: Kube, namespace: str, version: int) -> None:
    patch = {"spec": {"aliases": {"production": version}}}
    k8s.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "models", "iris", patch)


def run_workload(
    k8s: Kube,
    namespace: str,
    artifacts: Path,
    faults: RandomFaults,
    during_canary: Callable[[], None] = lambda: None,
) -> tuple[list[str], Traffic, list[Spell]]:
    """The workload, with `faults` active while the operator works: from the runs' creation
    (and the retrain request) to their registration, from the ModelDeployment's creation to the
    end of its rollout, and from the broken version's alias move to its rollback (the user's own
    steps fall between, as a user retries what the API server refused); `during_canary` runs
    once the first canary is in flight. Returns the invariants it found broken, the traffic the
    Service answered from the first rollout on (rows every version answers) and the serving
    pods' unready spells then."""
    script_config_map(k8s, namespace, "tree", TREE_TRAINER)
    create_model(k8s, namespace, "iris", {})
    for number in range(1, USER_RUNS + 1):
        create_run(k8s, namespace, f"chaos-{number}", model="iris", code="tree")
    template = {
        "image": "docker.io/cairn/trainer:dev",
        "imagePullPolicy": "Never",
        "dataset": {"uri": "sklearn://iris"},
        "code": {"configMap": {"name": "tree", "key": "train.py"}},
    }
    create_ct(k8s, namespace, "iris", template)
    retrain(k8s, namespace, "iris", "chaos")
    with faults.active():
        violations = _trained(k8s, namespace)

    # v1 served, then production moved to the last version: a canary under traffic.
    set_production(k8s, namespace, 1)
    steps: list[Body] = [{"setWeight": 50}, {"pause": {"duration": CANARY_PAUSE}}]
    strategy = canary_spec(steps, analysis=None)
    create_deployment(k8s, namespace, "chaos", alias="production", strategy=strategy)
    with faults.active():
        wait_for_phase(k8s, namespace, "iris-v1", "Approved")
        wait_serving(k8s, namespace, "chaos", 1)
    base = service_base(k8s, namespace, "chaos")
    with unready_spells(k8s, namespace) as unready, traffic(base, [SETOSA.tolist()]) as sent:
        faults.note("traffic begins")
        with faults.active():
            _promoted(k8s, namespace, faults, during_canary)
        # Then a version that fails on some rows, judged by the analysis: rolled back.
        digest = save_broken_version(artifacts, "iris-broken")
        create_version(k8s, namespace, BAD_VERSION, "iris-broken", digest)
        wait_version_phase(k8s, namespace, f"iris-v{BAD_VERSION}", "Approved")
        judged_strategy = {"spec": {"strategy": canary_spec(steps, ANALYSIS)}}
        k8s.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", "chaos", judged_strategy
        )
        with faults.active(), traffic(base, [VIRGINICA.tolist()]) as judged:
            violations += _rolled_back(k8s, namespace, faults, judged)
    spells = unready.spells
    return violations + leftovers(k8s, namespace, sent, faults, spells), sent, spells


def _trained(k8s: Kube, namespace: str) -> list[str]:
    names = [f"chaos-{n}" for n in range(1, USER_RUNS + 1)] + [REQUESTED_RUN]
    # The request's run is created by the operator, under the faults: wait for it to exist.
    wait_for(
        lambda: REQUESTED_RUN in runs_of(k8s, namespace, "iris"),
        timeout=TIMEOUT,
        message=f"the retrain request's run {REQUESTED_RUN}",
    )
    runs = [
        wait_for_run(k8s, namespace, name, "Succeeded", timeout=TIMEOUT, registered=True)
        for name in names
    ]
    violations = []
    if sorted(run["status"]["version"] for run in runs) != list(range(1, RUNS + 1)):
        violations.append(f"run versions {[run['status']['version'] for run in runs]}")
    if version_numbers(k8s, namespace, "iris") != list(range(1, RUNS + 1)):
        violations.append(f"ModelVersions {version_numbers(k8s, namespace, 'iris')}")
    if runs_of(k8s, namespace, "iris") != [REQUESTED_RUN]:
        violations.append(f"runs of one retrain request {runs_of(k8s, namespace, 'iris')}")
    return violations


def _promoted(
    k8s: Kube, namespace: str, faults: RandomFaults, during_canary: Callable[[], None]
) -> None:
    set_production(k8s, namespace, RUNS)
    wait_for(
        lambda: status_of(k8s, namespace, "chaos").get("canary"),
        timeout=TIMEOUT,
        message="a canary of the new version",
    )
    faults.note("canary in flight")
    during_canary()
    wait_for(
        lambda: promoted(status_of(k8s, namespace, "chaos"), RUNS),
        timeout=TIMEOUT,
        message=f"the rollout of iris-v{RUNS} to end promoted",
        describe=lambda: str(status_of(k8s, namespace, "chaos")),
    )
    faults.note("promoted")


def _rolled_back(k8s: Kube, namespace: str, faults: RandomFaults, judged: Traffic) -> list[str]:
    """Production moved to the broken version; its canary must be rolled back, never promoted.
    `judged` sends the rows it fails on (their failures are the point, not counted)."""
    faults.note("broken version's canary begins")
    set_production(k8s, namespace, BAD_VERSION)

    def rolled_back() -> Body | None:
        status = status_of(k8s, namespace, "chaos")
        if promoted(status, BAD_VERSION):
            return status
        rolled = (status.get("rollback") or {}).get("version") == BAD_VERSION
        stable = (status.get("stable") or {}).get("version")
        return status if rolled and stable == RUNS and not status.get("canary") else None

    status: Body = wait_for(
        rolled_back,
        timeout=TIMEOUT,
        message=f"the canary of iris-v{BAD_VERSION} to be rolled back",
        describe=lambda: f"{status_of(k8s, namespace, 'chaos')}; judged {dict(judged.answers)}",
    )
    faults.note("rolled back")
    if promoted(status, BAD_VERSION):
        return [f"iris-v{BAD_VERSION}, answering 500s, was promoted: {status}"]
    if status["rollback"].get("reason") != "AnalysisFailed":
        return [f"iris-v{BAD_VERSION} rolled back, but not by its analysis: {status['rollback']}"]
    return []


def promoted(status: Body, version: int) -> bool:
    stable = status.get("stable") or {}
    return (
        status.get("phase") == "Available"
        and not status.get("canary")
        and (stable.get("version") == version)
    )


def leftovers(
    k8s: Kube, namespace: str, sent: Traffic, faults: RandomFaults, spells: Sequence[Spell]
) -> list[str]:
    """What the converged workload must not show: an alias someone else moved, a version lost,
    an orphaned Job, Deployment or Service, a request that failed (but for those refused while
    a fault kept endpoint changes from kube-proxy, which `sent` counts)."""
    violations = []
    model = get(k8s, namespace, "models", "iris") or {}
    if (model["spec"].get("aliases") or {}).get("production") != BAD_VERSION:
        violations.append(f"production moved by someone else: {model['spec'].get('aliases')}")

    def latest() -> Any:
        return ((get(k8s, namespace, "models", "iris") or {}).get("status") or {}).get(
            "latestVersion"
        )

    try:  # the Model follows its versions on its own reconcile
        wait_for(lambda: latest() == BAD_VERSION, timeout=120, message="latestVersion")
    except TimeoutError:
        violations.append(f"latestVersion {latest()}")
    jobs = k8s.batch.list_namespaced_job(namespace, label_selector="cairn.dev/model=iris").items
    expected = sorted([f"chaos-{n}" for n in range(1, USER_RUNS + 1)] + [REQUESTED_RUN])
    if sorted(job.metadata.name for job in jobs) != expected:
        violations.append(f"Jobs {[job.metadata.name for job in jobs]}")
    deployments = [d.metadata.name for d in k8s.apps.list_namespaced_deployment(namespace).items]
    if deployments != ["chaos-stable"]:
        violations.append(f"Deployments {deployments}")
    services = sorted(s.metadata.name for s in k8s.core.list_namespaced_service(namespace).items)
    if services != ["chaos"]:
        violations.append(f"Services {services}")
    failed = [moment for moment in sent.failed_at if faults.excuse(moment, spells) is None]
    if failed:
        timeline = faults.timeline(sent.failed_at, spells)
        violations.append(f"{len(failed)} requests failed: {sent.answers}; {timeline}")
    return violations
