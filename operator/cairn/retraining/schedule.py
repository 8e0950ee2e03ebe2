"""Cron schedules of ContinuousTrainings: which schedule times came due, which were missed (pure).

Five fields (minute hour day-of-month month day-of-week) as cron has them, or six with seconds
first, read in the schedule's IANA time zone (croniter keeps daylight-saving transitions as cron
does). Times are returned in UTC, as status stores them.
"""

import dataclasses
import datetime
import functools
import zoneinfo

from croniter import croniter

from cairn.api.continuoustraining import ScheduleTrigger

UTC = datetime.UTC
# A schedule that was not looked at for a long time has many missed times; past this many only
# the count is kept (Kubernetes' CronJob controller stops at 100 too).
MISSED_MAX = 100


class InvalidSchedule(ValueError):
    """The schedule cannot be read; `field` names where, the message says what to write."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclasses.dataclass(frozen=True)
class Schedule:
    cron: str
    zone: zoneinfo.ZoneInfo
    seconds: bool  # six fields, seconds first

    @classmethod
    def of(cls, trigger: ScheduleTrigger) -> "Schedule":
        """The schedule of a trigger, or InvalidSchedule naming the field at fault."""
        return _parsed(trigger.cron, trigger.time_zone)

    def _iterate(self, start: datetime.datetime) -> croniter:
        return croniter(self.cron, start.astimezone(self.zone), second_at_beginning=self.seconds)

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        following: datetime.datetime = self._iterate(moment).get_next(datetime.datetime)
        return following.astimezone(UTC)

    def times_between(
        self, after: datetime.datetime, until: datetime.datetime
    ) -> tuple[list[datetime.datetime], int]:
        """The schedule times t with after < t <= until: the latest MISSED_MAX of them, and how
        many there were in all."""
        found: list[datetime.datetime] = []
        total = 0
        iterator = self._iterate(after)
        while True:
            moment: datetime.datetime = iterator.get_next(datetime.datetime)
            if moment > until:
                return found, total
            total += 1
            found.append(moment.astimezone(UTC))
            if len(found) > MISSED_MAX:
                found.pop(0)


@dataclasses.dataclass(frozen=True)
class Due:
    """What the schedule says now: the time to start a run for (if any), the times not started
    (missed while nobody looked, or past startingDeadlineSeconds), the last time handled, and
    the next one."""

    start: datetime.datetime | None
    missed: list[datetime.datetime]
    missed_count: int
    handled: datetime.datetime | None
    next_time: datetime.datetime


def due(
    schedule: Schedule,
    last_handled: datetime.datetime | None,
    created: datetime.datetime,
    now: datetime.datetime,
    deadline_seconds: int | None,
) -> Due:
    """Times since the last one handled (or since the ContinuousTraining was created): at most
    one run, for the latest, and only within the deadline; the others are missed."""
    times, total = schedule.times_between(last_handled or created, now)
    next_time = schedule.next_after(now)
    if not times:
        return Due(None, [], 0, last_handled, next_time)
    latest, earlier = times[-1], times[:-1]
    late = deadline_seconds is not None and (now - latest).total_seconds() > deadline_seconds
    if late:
        return Due(None, times, total, latest, next_time)
    return Due(latest, earlier, total - 1, latest, next_time)


# Parsing a cron expression costs more than the rest of a reconcile with nothing due; a few
# thousand distinct schedules are plenty.
@functools.lru_cache(maxsize=4096)
def _parsed(cron_text: str, time_zone: str | None) -> Schedule:
    name = time_zone or "UTC"
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            "spec.triggers.schedule.timeZone",
            f"{name!r} is not a time zone this operator knows: use an IANA name such as "
            "Europe/Paris, America/New_York or UTC",
        ) from None
    cron = " ".join(cron_text.split())
    seconds = not cron.startswith("@") and len(cron.split()) == 6
    try:
        croniter(cron, datetime.datetime.now(zone), second_at_beginning=seconds)
    except (ValueError, KeyError) as error:
        raise InvalidSchedule(
            "spec.triggers.schedule.cron",
            f"{cron_text!r} is not a valid cron schedule ({error}); for example "
            "'0 3 * * *' (03:00 every day) or '*/30 * * * * *' (every 30 seconds)",
        ) from None
    return Schedule(cron, zone, seconds)
