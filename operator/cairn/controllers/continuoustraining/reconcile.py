"""One level-based reconcile of a ContinuousTraining: which triggers fire now (its schedule, its
dataset's digest, its code, the cairn.dev/retrain annotation, watched conditions), whether a run
starts for them, and the status that records what was seen, started and skipped.

Everything a trigger consumes is recorded in status in the same write that records the run it
started, and the run's name comes from that status (or, for a scheduled run, from its schedule
time): a crash between creating the run and writing the status repeats the same decision, whose
run then already exists, so no restart ever starts a run twice.
"""

import dataclasses
import datetime
import hashlib
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.analysis.judge import duration_seconds
from cairn.api import (
    ContinuousTraining,
    ContinuousTrainingConditionType,
    ContinuousTrainingStatus,
    TriggerRecord,
    TriggerType,
)
from cairn.api.conditions import set_condition
from cairn.api.continuoustraining import (
    CodeObservation,
    ContinuousTrainingReason,
    DatasetObservation,
)
from cairn.api.labels import PROBE_LABEL, RETRAIN_ANNOTATION
from cairn.controllers.continuoustraining import probe, runs, sources
from cairn.controllers.exclusive import exclusive
from cairn.controllers.parsing import parse
from cairn.kube import cache, events, ownership, status, workloads
from cairn.kube.errors import is_refused, reason_of
from cairn.observability import metrics
from cairn.observability.reconciles import reconciling
from cairn.retraining.schedule import Due, InvalidSchedule, Schedule, due
from cairn.retraining.triggers import Decision, Firing, decide, run_name

Body = dict[str, Any]
Reason = ContinuousTrainingReason
Condition = ContinuousTrainingConditionType
UTC = datetime.UTC

logger = logging.getLogger(__name__)


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


@dataclasses.dataclass(frozen=True)
class Problem:
    reason: ContinuousTrainingReason
    message: str


def problems_of(ct: ContinuousTraining) -> list[Problem]:
    """What keeps the ContinuousTraining from running at all, naming the field."""
    found = []
    schedule = ct.spec.triggers.schedule
    if schedule is not None:
        try:
            Schedule.of(schedule)
        except InvalidSchedule as error:
            found.append(Problem(Reason.INVALID_SCHEDULE, str(error)))
    if ct.spec.triggers.dataset is not None and (why := probe.mountable(ct)):
        found.append(Problem(Reason.INVALID_DATASET, why))
    for index, trigger in enumerate(ct.spec.triggers.conditions or []):
        if sources.read(ct.namespace, trigger) is None:
            found.append(
                Problem(
                    Reason.CONDITION_SOURCE_NOT_FOUND,
                    f"spec.triggers.conditions[{index}]: {trigger.kind} {trigger.name} does not "
                    f"exist in namespace {ct.namespace}; create it or fix the reference",
                )
            )
    return found


def reconcile(namespace: str, name: str) -> None:
    with (
        exclusive(ContinuousTraining.plural(), namespace, name),
        reconciling("ContinuousTraining", namespace, name),
    ):
        body = cache.for_write(ContinuousTraining, namespace, name)
        ct = parse(ContinuousTraining, body) if body is not None else None
        if ct is not None and not ct.deleting:
            _reconcile(ct, now())


def _reconcile(ct: ContinuousTraining, moment: datetime.datetime) -> None:
    old = ct.status or ContinuousTrainingStatus()
    problems = problems_of(ct)
    if problems:
        new = with_conditions(ct, old, problems)
        if status.write(ct, ct.status, new) and new.conditions != old.conditions:
            for problem in problems:
                events.warn(ct, reason=problem.reason, message=problem.message)
        return
    observed = observe(ct, old, moment)
    firings = observed.firings
    history = runs.Runs.of(ct)
    last = old.last_trigger.time if old.last_trigger else None
    every = duration_seconds(ct.spec.min_interval) if ct.spec.min_interval else None
    decision = decide(ct.spec, firings, history.active_names, last, every, moment)
    new = observed.status
    if not decision.started and any(f.type == TriggerType.CONDITION for f in firings):
        # The transition stays unacted on, so it fires again once a run can start, if the
        # condition is still True then (decision.waiting says so meanwhile).
        new = new.model_copy(update={"observed_conditions": old.observed_conditions})
    started: str | None = None
    if decision.started:
        for replaced in decision.replace:
            runs.delete(ct, replaced)
        started = start(ct, old, decision, moment)
        record = TriggerRecord(
            type=decision.run_type or TriggerType.REQUEST,
            reason=decision.reason[:1024],
            time=moment,
            run=started,
        )
        new = trained(ct, new, record)
    for name in runs.beyond_history(ct, history):
        runs.delete(ct, name)
    successful, version = runs.last_success(history)
    active = [n for n in history.active_names if n not in decision.replace]
    new = new.model_copy(
        update={
            "active": sorted({*active, *([started] if started else [])}) or None,
            "last_successful_run": successful or old.last_successful_run,
            "last_successful_version": version or old.last_successful_version,
            "waiting": decision.waiting or observed.waiting,
        }
    )
    new = with_conditions(ct, new, [])
    status.write(ct, ct.status, new)
    announce(ct, old, new, observed, decision, started)


def start(
    ct: ContinuousTraining, old: ContinuousTrainingStatus, decision: Decision, at: datetime.datetime
) -> str:
    number = (old.runs_started or 0) + 1
    kind = decision.run_type or TriggerType.REQUEST
    scheduled = next((f.time for f in decision.started if f.type == TriggerType.SCHEDULE), None)
    names = [
        run_name(ct.name, kind, number + offset, scheduled) for offset in range(runs.NAMES_TRIED)
    ]
    return runs.start(ct, names, decision, at)


def trained(
    ct: ContinuousTraining, new: ContinuousTrainingStatus, record: TriggerRecord
) -> ContinuousTrainingStatus:
    """The status once a run started: what it trains on is what the level triggers compare
    with from now on."""
    update: dict[str, Any] = {"last_trigger": record, "runs_started": (new.runs_started or 0) + 1}
    if new.dataset is not None and new.dataset.digest is not None:
        update["dataset"] = new.dataset.model_copy(update={"trained_digest": new.dataset.digest})
    if new.code is not None:
        update["code"] = new.code.model_copy(
            update={"trained_hash": new.code.hash, "trained_revision": new.code.revision}
        )
    return new.model_copy(update=update)


@dataclasses.dataclass(frozen=True)
class Observed:
    """The triggers that fire now, and the status with everything seen recorded."""

    firings: list[Firing]
    status: ContinuousTrainingStatus
    schedule: Due | None = None
    waiting: str | None = None


def observe(
    ct: ContinuousTraining, old: ContinuousTrainingStatus, moment: datetime.datetime
) -> Observed:
    triggers = ct.spec.triggers
    firings: list[Firing] = []
    update: dict[str, Any] = {"observed_generation": ct.generation}
    schedule_due = None
    if triggers.schedule is not None:
        schedule = Schedule.of(triggers.schedule)
        created = datetime.datetime.fromisoformat(str(ct.metadata["creationTimestamp"]))
        schedule_due = due(
            schedule,
            old.last_schedule_time,
            created,
            moment,
            triggers.schedule.starting_deadline_seconds,
        )
        if schedule_due.start is not None:
            cron = triggers.schedule.cron
            when = schedule_due.start.isoformat()
            firings.append(
                Firing(TriggerType.SCHEDULE, f"schedule {cron!r} at {when}", schedule_due.start)
            )
        update["last_schedule_time"] = schedule_due.handled
        update["next_schedule_time"] = schedule_due.next_time
    request = ct.annotations.get(RETRAIN_ANNOTATION)
    if request and request != old.observed_request:
        firings.append(Firing(TriggerType.REQUEST, f"requested: {request}", moment))
        update["observed_request"] = request
    fired, seen = sources.fired(ct, old.observed_conditions or [])
    firings += [Firing(TriggerType.CONDITION, said, moment) for said in fired]
    update["observed_conditions"] = seen or None
    if triggers.dataset is not None:
        dataset = check_dataset(ct, old.dataset or DatasetObservation(), moment)
        update["dataset"] = dataset
        if dataset.digest is not None and dataset.digest != dataset.trained_digest:
            said = "not trained on yet" if dataset.trained_digest is None else "changed"
            uri = ct.spec.template.dataset.uri if ct.spec.template.dataset else ""
            firings.append(
                Firing(
                    TriggerType.DATASET, f"dataset {uri} {said} ({dataset.digest[:19]}…)", moment
                )
            )
    if triggers.code is not None:
        code = check_code(ct, old.code or CodeObservation(), moment)
        update["code"] = code
        current = (code.hash, code.revision)
        if code.hash is not None and current != (code.trained_hash, code.trained_revision):
            said = "not trained with yet" if code.trained_hash is None else "changed"
            firings.append(Firing(TriggerType.CODE, f"code {said} ({code_text(code)})", moment))
    waiting = None
    if triggers.dataset is not None and update["dataset"].checked_at is None:
        # Until the first dataset check reports, a level run would not know the digest it
        # trains on and the dataset trigger would start a second run for the same data.
        held = [firing for firing in firings if firing.level]
        if held:
            firings = [firing for firing in firings if not firing.level]
            said = "; ".join(firing.reason for firing in held)
            waiting = f"{said} waits: the first check of the dataset has not finished"
    return Observed(firings, old.model_copy(update=update), schedule_due, waiting)


def code_text(code: CodeObservation) -> str:
    revision = f"revision {code.revision}, " if code.revision else ""
    return f"{revision}ConfigMap hash {(code.hash or '')[:19]}…"


def check_code(
    ct: ContinuousTraining, old: CodeObservation, moment: datetime.datetime
) -> CodeObservation:
    """The code's hash and revision, re-read every checkEvery."""
    trigger, code = ct.spec.triggers.code, ct.spec.template.code
    if trigger is None or code is None:
        return old
    revision = code.revision
    fresh = old.checked_at is not None and (moment - old.checked_at).total_seconds() < (
        duration_seconds(trigger.check_every)
    )
    if fresh and revision == old.revision:
        return old
    data = workloads.config_map_data(ct.namespace, code.config_map.name)
    if data is None:
        return old.model_copy(update={"checked_at": moment, "revision": revision})
    chosen = (
        {code.config_map.key: data.get(code.config_map.key, "")} if code.config_map.key else data
    )
    digest = hashlib.sha256()
    for key in sorted(chosen):
        digest.update(key.encode() + b"\0" + chosen[key].encode() + b"\0")
    return old.model_copy(
        update={"hash": f"sha256:{digest.hexdigest()}", "revision": revision, "checked_at": moment}
    )


def check_dataset(
    ct: ContinuousTraining, old: DatasetObservation, moment: datetime.datetime
) -> DatasetObservation:
    """Read what the probe pods found, and start one when a check is due."""
    trigger = ct.spec.triggers.dataset
    if trigger is None:
        return old
    found = old
    probes = workloads.list_pods(ct.namespace, {PROBE_LABEL: ct.name})
    running = False
    for pod in sorted(probes, key=lambda p: p["metadata"]["name"]):
        result = probe.result_of(pod)
        if result is None:
            running = True
            continue
        finished_at = probe_time(pod) or moment
        if result.digest is not None:
            found = found.model_copy(
                update={
                    "digest": result.digest,
                    "version": result.version,
                    "checked_at": finished_at,
                    "message": None,
                }
            )
        else:
            found = found.model_copy(update={"checked_at": finished_at, "message": result.error})
        workloads.delete_pod(ct.namespace, pod["metadata"]["name"])
    every = duration_seconds(trigger.check_every)
    stale = found.checked_at is None or (moment - found.checked_at).total_seconds() >= every
    if stale and not running:
        name = probe.pod_name(ct, moment)
        pod = probe.build_pod(ct, name)
        ownership.adopt(pod, ct)  # deleting the ContinuousTraining deletes its probe
        try:
            workloads.create_pod(ct.namespace, pod)
        except ApiException as error:
            if not is_refused(error):
                raise
            # A quota or an admission rule: said in status, tried again at the next check.
            why = f"the dataset probe pod {name} was refused: {reason_of(error)}"
            return found.model_copy(update={"checked_at": moment, "message": why})
        logger.debug("started dataset probe %s", name)
    return found


def probe_time(pod: Body) -> datetime.datetime | None:
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        finished = ((container.get("state") or {}).get("terminated") or {}).get("finishedAt")
        if finished:
            return datetime.datetime.fromisoformat(str(finished).replace("Z", "+00:00"))
    return None


def with_conditions(
    ct: ContinuousTraining, current: ContinuousTrainingStatus, problems: list[Problem]
) -> ContinuousTrainingStatus:
    generation = ct.generation
    if problems:
        ready, reason = False, problems[0].reason
        message = "; ".join(p.message for p in problems) + "; no run starts until this is fixed"
    else:
        watched = watched_triggers(ct)
        ready, reason = True, Reason.READY
        message = f"watching {', '.join(watched)}" if watched else "only cairn.dev/retrain"
    conditions = set_condition(
        current.conditions, Condition.READY, ready, reason, message, generation
    )
    suspended = ct.spec.suspend
    conditions = set_condition(
        conditions,
        Condition.SUSPENDED,
        suspended,
        Reason.SUSPENDED if suspended else Reason.ACTIVE,
        "spec.suspend is true: triggers are skipped" if suspended else "triggers start runs",
        generation,
    )
    return current.model_copy(update={"conditions": conditions, "observed_generation": generation})


def watched_triggers(ct: ContinuousTraining) -> list[str]:
    triggers = ct.spec.triggers
    said = []
    if triggers.schedule is not None:
        said.append(f"schedule {triggers.schedule.cron!r}")
    if triggers.dataset is not None:
        said.append(f"dataset every {triggers.dataset.check_every}")
    if triggers.code is not None:
        said.append(f"code every {triggers.code.check_every}")
    for trigger in triggers.conditions or []:
        said.append(f"{trigger.kind} {trigger.name} {trigger.type}")
    return [*said, "cairn.dev/retrain"]


def announce(
    ct: ContinuousTraining,
    old: ContinuousTrainingStatus,
    new: ContinuousTrainingStatus,
    observed: Observed,
    decision: Decision,
    started: str | None,
) -> None:
    """Events (after the status that records them) for every trigger, skip and missed
    schedule; the operator's trigger metrics."""
    for firing in decision.started:
        metrics.trigger_fired(firing.type.value, "started")
        if firing.type == TriggerType.SCHEDULE:
            metrics.schedule_lag(max(0.0, (now() - firing.time).total_seconds()))
    if started is not None:
        replaced = f" (replacing {', '.join(decision.replace)})" if decision.replace else ""
        events.info(
            ct, reason=Reason.TRIGGERED, message=f"started {started}{replaced}: {decision.reason}"
        )
    for firing, why in decision.skipped:
        metrics.trigger_fired(firing.type.value, "skipped")
        events.info(ct, reason=Reason.TRIGGER_SKIPPED, message=f"{firing.reason}: skipped, {why}")
    if new.waiting and new.waiting != old.waiting:
        events.info(ct, reason=Reason.TRIGGER_SKIPPED, message=new.waiting)
    schedule = observed.schedule
    if schedule is not None and schedule.missed:
        shown = ", ".join(t.isoformat() for t in schedule.missed[-10:])
        more = f" (and {schedule.missed_count - 10} earlier)" if schedule.missed_count > 10 else ""
        what = (
            "started one run for the latest"
            if schedule.start is not None
            else "past spec.triggers.schedule.startingDeadlineSeconds: none started"
        )
        for _ in schedule.missed:
            metrics.trigger_fired(TriggerType.SCHEDULE.value, "missed")
        events.warn(
            ct,
            reason=Reason.MISSED_SCHEDULE,
            message=f"missed {schedule.missed_count} schedule time(s): {shown}{more}; {what}",
        )
    dataset = new.dataset
    if (
        dataset is not None
        and dataset.message
        and dataset.message != (old.dataset or DatasetObservation()).message
    ):
        events.warn(ct, reason=Reason.DATASET_CHECK_FAILED, message=dataset.message)
