"""Schedules: `@hourly`, `@daily`, `@every N[s|m|h]` and five-field cron, in a time zone.

`@hourly` and `@daily` keep cron's meaning (minute 0 of every hour, midnight), and like
every cron expression they are computed in the wall-clock time of `ENVSYNC_TIMEZONE`, so a
daily run stays at its local time across daylight-saving changes. Around a change:

- a wall time that does not exist (clocks jump forward over it) runs at the moment of the
  jump, once, as Vixie cron does;
- a wall time that happens twice (clocks fall back) runs at its first occurrence, except
  that an expression whose hour field is `*` runs in both, so `@hourly` stays hourly.

`@every N` is a plain interval, aligned to multiples of N seconds since the Unix epoch, so
every replica computes the same slots whatever its start time. The times returned are
slot times; the scheduler adds jitter when it runs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *"}
EVERY_PATTERN = re.compile(r"@every\s+(\d+)\s*([smh])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}

# The largest jump of a UTC offset at a transition is two hours (Antarctica/Troll); candidate
# wall times this far around the given instant are enough to cover every fold and gap.
SEARCH_MARGIN = timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule. `expression` is a cron expression, or None for an interval."""

    text: str
    expression: str | None = None
    interval_s: int | None = None

    def next_after(self, after: datetime, zone: ZoneInfo) -> datetime:
        """The first slot strictly after `after` (an aware datetime), in UTC."""
        if self.interval_s is not None:
            epoch = after.timestamp()
            slot = (int(epoch // self.interval_s) + 1) * self.interval_s
            return datetime.fromtimestamp(slot, UTC)
        assert self.expression is not None
        return _next_cron(self.expression, after, zone)

    def latest_at_or_before(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The last slot at or before `now`, in UTC: the one a catch-up run stands for."""
        if self.interval_s is not None:
            slot = int(now.timestamp() // self.interval_s) * self.interval_s
            return datetime.fromtimestamp(slot, UTC)
        assert self.expression is not None
        return _previous_cron(self.expression, now, zone)


def parse_schedule(text: str) -> Schedule:
    """Parse ENVSYNC_SCHEDULE; raise ValueError saying which forms are accepted."""
    cleaned = " ".join(text.split())
    if cleaned in MACROS:
        return Schedule(cleaned, expression=MACROS[cleaned])

    every = EVERY_PATTERN.fullmatch(cleaned)
    if every:
        seconds = int(every.group(1)) * UNIT_SECONDS[every.group(2)]
        if seconds <= 0:
            raise ValueError("@every needs a positive interval, such as @every 15m")
        return Schedule(cleaned, interval_s=seconds)

    # Imported only for a cron expression, because every command validates the schedule
    # setting and the macros and intervals above need no croniter.
    from croniter import croniter  # type: ignore[import-untyped]  # croniter ships no types

    if len(cleaned.split(" ")) == 5 and croniter.is_valid(cleaned):
        return Schedule(cleaned, expression=cleaned)
    raise ValueError(
        "not a schedule; accepted: @hourly, @daily, @every N followed by s, m or h "
        "(such as @every 30m), or a five-field cron expression such as '15 3 * * 1-5'"
    )


def _next_cron(expression: str, after: datetime, zone: ZoneInfo) -> datetime:
    local = after.astimezone(zone).replace(tzinfo=None)
    best: datetime | None = None
    for wall in _wall_times(expression, local - SEARCH_MARGIN, forward=True):
        if best is not None and wall > local + SEARCH_MARGIN:
            break
        for instant in _instants(wall, zone, _hour_is_wildcard(expression)):
            if instant > after and (best is None or instant < best):
                best = instant
    assert best is not None
    return best.astimezone(UTC)


def _previous_cron(expression: str, now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone).replace(tzinfo=None)
    best: datetime | None = None
    for wall in _wall_times(expression, local + SEARCH_MARGIN, forward=False):
        if best is not None and wall < local - SEARCH_MARGIN:
            break
        for instant in _instants(wall, zone, _hour_is_wildcard(expression)):
            if instant <= now and (best is None or instant > best):
                best = instant
    assert best is not None
    return best.astimezone(UTC)


def _wall_times(expression: str, start: datetime, *, forward: bool) -> Iterator[datetime]:
    """Naive wall-clock times matching the expression, moving away from `start`."""
    from croniter import croniter

    iterator = croniter(expression, start)
    while True:
        if forward:
            yield iterator.get_next(datetime)
        else:
            yield iterator.get_prev(datetime)


def _hour_is_wildcard(expression: str) -> bool:
    return expression.split(" ")[1] == "*"


def _instants(wall: datetime, zone: ZoneInfo, both_folds: bool) -> list[datetime]:
    """Return the real instants at which a wall-clock time happens in `zone`, in UTC.

    They are returned in UTC because Python compares two datetimes of the same tzinfo by
    their wall times and ignores `fold`, which would rank both occurrences of a repeated
    wall time as equal.
    """
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return [first.astimezone(UTC)]
    if _exists(first):
        # Clocks fell back: the wall time happens twice, an hour apart in most zones and
        # 30 minutes apart on Lord Howe Island.
        both = [first.astimezone(UTC), second.astimezone(UTC)]
        return both if both_folds else both[:1]
    # Clocks jumped forward over this wall time: run at the moment of the jump.
    return [_transition_between(second, first)]


def _exists(aware: datetime) -> bool:
    round_trip = aware.astimezone(UTC).astimezone(aware.tzinfo)
    return round_trip.replace(tzinfo=None) == aware.replace(tzinfo=None)


def _transition_between(earlier: datetime, later: datetime) -> datetime:
    """The instant at which the zone's offset changes, between two aware datetimes."""
    zone = later.tzinfo
    low = earlier.astimezone(UTC)
    high = later.astimezone(UTC)
    offset_before = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)
