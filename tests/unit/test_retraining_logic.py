"""ContinuousTraining's pure rules: cron schedules (time zones, seconds, missed times and the
starting deadline), which triggers start a run, and how runs are named."""

import datetime

import pytest

from cairn.api import ContinuousTrainingSpec, TriggerType
from cairn.api.continuoustraining import ScheduleTrigger
from cairn.retraining.schedule import InvalidSchedule, Schedule, due
from cairn.retraining.triggers import Firing, decide, run_name

UTC = datetime.UTC
T0 = datetime.datetime(2026, 3, 28, 23, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def schedule(cron: str, zone: str | None = None) -> Schedule:
    return Schedule.of(ScheduleTrigger(cron=cron, time_zone=zone))


def test_six_fields_are_seconds_first_and_five_are_minutes() -> None:
    every_ten = schedule("*/10 * * * * *")
    times, total = every_ten.times_between(at(0), at(35))
    assert times == [at(10), at(20), at(30)] and total == 3
    assert schedule("*/5 * * * *").next_after(at(1)) == at(300)


def test_a_schedule_is_read_in_its_time_zone_across_daylight_saving() -> None:
    # Paris moves from 02:00 to 03:00 on 2026-03-29: 02:30 does not exist that day, and the
    # run happens at 03:00 local time, 01:00 UTC, as cron does it.
    paris = schedule("30 2 * * *", "Europe/Paris")
    assert paris.next_after(T0) == datetime.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # The next day 02:30 local is 00:30 UTC (summer time).
    after = paris.next_after(datetime.datetime(2026, 3, 29, 2, 0, tzinfo=UTC))
    assert after == datetime.datetime(2026, 3, 30, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "field"),
    [
        ("61 * * * *", None, "spec.triggers.schedule.cron"),
        ("0 3 * 13 *", None, "spec.triggers.schedule.cron"),
        ("0 3 * * *", "Mars/Olympus_Mons", "spec.triggers.schedule.timeZone"),
    ],
)
def test_a_schedule_that_cannot_be_read_names_its_field(
    cron: str, zone: str | None, field: str
) -> None:
    with pytest.raises(InvalidSchedule) as raised:
        schedule(cron, zone)
    assert raised.value.field == field and str(raised.value).startswith(field)


def test_times_missed_while_nobody_looked_start_one_run_for_the_latest() -> None:
    every_ten = schedule("*/10 * * * * *")
    # Down from 5 s to 38 s: 10, 20 and 30 came due.
    found = due(every_ten, last_handled=at(5), created=at(0), now=at(38), deadline_seconds=None)
    assert found.start == at(30)
    assert found.missed == [at(10), at(20)] and found.missed_count == 2
    assert found.handled == at(30) and found.next_time == at(40)
    # Within the deadline the catch-up runs; past it nothing starts and all three are missed.
    assert due(every_ten, at(5), at(0), at(38), deadline_seconds=10).start == at(30)
    late = due(every_ten, at(5), at(0), at(38), deadline_seconds=5)
    assert late.start is None and late.missed == [at(10), at(20), at(30)]
    assert late.handled == at(30)  # handled: never started later
    # Nothing due: the next time only.
    quiet = due(every_ten, at(30), at(0), at(35), deadline_seconds=None)
    assert (quiet.start, quiet.missed, quiet.next_time) == (None, [], at(40))


def spec(**fields: object) -> ContinuousTrainingSpec:
    return ContinuousTrainingSpec.model_validate(
        {"model": "wine", "template": {"dataset": {"uri": "sklearn://wine"}}, **fields}
    )


REQUEST = Firing(TriggerType.REQUEST, "requested: new labels", at(0))
DATA = Firing(TriggerType.DATASET, "dataset changed", at(0))
SCHEDULED = Firing(TriggerType.SCHEDULE, "schedule at 00:00", at(0))
DRIFTED = Firing(TriggerType.CONDITION, "ModelDeployment churn is Drifted", at(0))


def test_several_triggers_start_one_run_named_after_the_most_specific() -> None:
    decision = decide(spec(), [SCHEDULED, DATA, REQUEST], [], None, None, at(0))
    assert decision.started == (SCHEDULED, DATA, REQUEST)
    assert decision.run_type == TriggerType.REQUEST
    assert decision.reason == "schedule at 00:00; dataset changed; requested: new labels"


def test_forbid_skips_edges_while_a_run_is_active_and_changes_wait() -> None:
    decision = decide(spec(), [REQUEST, DATA], ["wine-request-1"], None, None, at(0))
    assert not decision.started
    assert decision.skipped == (
        (REQUEST, "concurrencyPolicy Forbid: wine-request-1 still running"),
    )
    assert decision.waiting == (
        "dataset changed waits: concurrencyPolicy Forbid: wine-request-1 still running"
    )


def test_allow_runs_beside_and_replace_replaces() -> None:
    allowed = decide(spec(concurrencyPolicy="Allow"), [REQUEST], ["a"], None, None, at(0))
    assert allowed.started == (REQUEST,) and allowed.replace == ()
    replaced = decide(spec(concurrencyPolicy="Replace"), [REQUEST], ["a"], None, None, at(0))
    assert replaced.started == (REQUEST,) and replaced.replace == ("a",)


def test_min_interval_debounces_and_suspend_skips() -> None:
    debounced = decide(spec(minInterval="10m"), [REQUEST], [], at(-60), 600, at(0))
    assert not debounced.started
    assert "spec.minInterval 10m: the last run started 60s ago" in debounced.skipped[0][1]
    assert decide(spec(minInterval="10m"), [REQUEST], [], at(-601), 600, at(0)).started
    suspended = decide(spec(suspend=True), [SCHEDULED, DATA], [], None, None, at(0))
    assert suspended.skipped == ((SCHEDULED, "spec.suspend is true"),)
    assert suspended.waiting == "dataset changed waits: spec.suspend is true"


def test_a_condition_waits_out_min_interval_instead_of_being_lost() -> None:
    waiting = decide(spec(minInterval="1h"), [DRIFTED, REQUEST], [], at(-30), 3600, at(0))
    assert not waiting.started
    assert waiting.skipped == ((REQUEST, "spec.minInterval 1h: the last run started 30s ago"),)
    assert waiting.waiting == (
        "ModelDeployment churn is Drifted waits: spec.minInterval 1h: the last run started 30s ago"
    )
    later = decide(spec(minInterval="1h"), [DRIFTED], [], at(-3600), 3600, at(0))
    assert later.started == (DRIFTED,) and later.run_type == TriggerType.CONDITION


def test_a_scheduled_run_is_named_after_its_time_the_others_count() -> None:
    when = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    assert run_name("wine", TriggerType.SCHEDULE, 7, when) == "wine-schedule-1767225600"
    assert run_name("wine", TriggerType.DATASET, 7, None) == "wine-dataset-7"
