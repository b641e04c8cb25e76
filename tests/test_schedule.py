"""Schedules: parsing, `@every` alignment and cron slots across daylight-saving changes.

Expected slots are written as local wall times with their UTC offset, so each row shows
which side of a transition a run lands on. The 2024 transitions used here:

- America/New_York: 02:00 EST -> 03:00 EDT on 10 March, 02:00 EDT -> 01:00 EST on 3 November.
- Europe/Berlin: 02:00 CET -> 03:00 CEST on 31 March, 03:00 CEST -> 02:00 CET on 27 October.
- Australia/Lord_Howe (a 30-minute shift): 02:00 +11:00 -> 01:30 +10:30 on 7 April,
  02:00 +10:30 -> 02:30 +11:00 on 6 October.
- Australia/Sydney: 03:00 AEDT -> 02:00 AEST on 7 April, 02:00 AEST -> 03:00 AEDT on 6 October.
- America/Santiago (the change is at midnight): 00:00 -03 -> 23:00 -04 the evening before
  7 April, 00:00 -04 -> 01:00 -03 on 8 September.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from envsync.config import load_settings
from envsync.errors import ConfigError
from envsync.schedule import Schedule, parse_schedule

# (zone, schedule, start as local time with offset, the next slots as local times)
DST_CASES = [
    # New York, spring forward: 02:00-03:00 does not exist.
    ("America/New_York", "@daily", "2024-03-09T12:00-05:00",
     ["2024-03-10T00:00-05:00", "2024-03-11T00:00-04:00", "2024-03-12T00:00-04:00"]),
    ("America/New_York", "@hourly", "2024-03-10T00:30-05:00",
     ["2024-03-10T01:00-05:00", "2024-03-10T03:00-04:00", "2024-03-10T04:00-04:00"]),
    ("America/New_York", "30 2 * * *", "2024-03-09T12:00-05:00",
     ["2024-03-10T03:00-04:00", "2024-03-11T02:30-04:00", "2024-03-12T02:30-04:00"]),
    ("America/New_York", "0 1 * * *", "2024-03-09T12:00-05:00",
     ["2024-03-10T01:00-05:00", "2024-03-11T01:00-04:00"]),
    # New York, fall back: 01:00-02:00 happens twice.
    ("America/New_York", "@daily", "2024-11-02T12:00-04:00",
     ["2024-11-03T00:00-04:00", "2024-11-04T00:00-05:00", "2024-11-05T00:00-05:00"]),
    ("America/New_York", "@hourly", "2024-11-03T00:30-04:00",
     ["2024-11-03T01:00-04:00", "2024-11-03T01:00-05:00", "2024-11-03T02:00-05:00",
      "2024-11-03T03:00-05:00"]),
    ("America/New_York", "30 2 * * *", "2024-11-02T12:00-04:00",
     ["2024-11-03T02:30-05:00", "2024-11-04T02:30-05:00"]),
    ("America/New_York", "0 1 * * *", "2024-11-02T12:00-04:00",
     ["2024-11-03T01:00-04:00", "2024-11-04T01:00-05:00", "2024-11-05T01:00-05:00"]),
    # Berlin, spring forward: 02:00-03:00 does not exist.
    ("Europe/Berlin", "@daily", "2024-03-30T12:00+01:00",
     ["2024-03-31T00:00+01:00", "2024-04-01T00:00+02:00"]),
    ("Europe/Berlin", "@hourly", "2024-03-31T00:30+01:00",
     ["2024-03-31T01:00+01:00", "2024-03-31T03:00+02:00", "2024-03-31T04:00+02:00"]),
    ("Europe/Berlin", "30 2 * * *", "2024-03-30T12:00+01:00",
     ["2024-03-31T03:00+02:00", "2024-04-01T02:30+02:00"]),
    ("Europe/Berlin", "0 1 * * *", "2024-03-30T12:00+01:00",
     ["2024-03-31T01:00+01:00", "2024-04-01T01:00+02:00"]),
    # Berlin, fall back: 02:00-03:00 happens twice.
    ("Europe/Berlin", "@daily", "2024-10-26T12:00+02:00",
     ["2024-10-27T00:00+02:00", "2024-10-28T00:00+01:00"]),
    ("Europe/Berlin", "@hourly", "2024-10-27T00:30+02:00",
     ["2024-10-27T01:00+02:00", "2024-10-27T02:00+02:00", "2024-10-27T02:00+01:00",
      "2024-10-27T03:00+01:00"]),
    ("Europe/Berlin", "*/15 * * * *", "2024-10-27T02:05+02:00",
     ["2024-10-27T02:15+02:00", "2024-10-27T02:30+02:00", "2024-10-27T02:45+02:00",
      "2024-10-27T02:00+01:00", "2024-10-27T02:15+01:00"]),
    ("Europe/Berlin", "30 2 * * *", "2024-10-26T12:00+02:00",
     ["2024-10-27T02:30+02:00", "2024-10-28T02:30+01:00"]),
    ("Europe/Berlin", "0 1 * * *", "2024-10-26T12:00+02:00",
     ["2024-10-27T01:00+02:00", "2024-10-28T01:00+01:00"]),
    # Lord Howe, 30 minutes back: 01:30-02:00 happens twice.
    ("Australia/Lord_Howe", "@daily", "2024-04-06T12:00+11:00",
     ["2024-04-07T00:00+11:00", "2024-04-08T00:00+10:30"]),
    ("Australia/Lord_Howe", "@hourly", "2024-04-07T00:30+11:00",
     ["2024-04-07T01:00+11:00", "2024-04-07T02:00+10:30", "2024-04-07T03:00+10:30"]),
    ("Australia/Lord_Howe", "45 * * * *", "2024-04-07T00:50+11:00",
     ["2024-04-07T01:45+11:00", "2024-04-07T01:45+10:30", "2024-04-07T02:45+10:30"]),
    ("Australia/Lord_Howe", "45 1 * * *", "2024-04-06T12:00+11:00",
     ["2024-04-07T01:45+11:00", "2024-04-08T01:45+10:30"]),
    ("Australia/Lord_Howe", "30 2 * * *", "2024-04-06T12:00+11:00",
     ["2024-04-07T02:30+10:30", "2024-04-08T02:30+10:30"]),
    ("Australia/Lord_Howe", "0 1 * * *", "2024-04-06T12:00+11:00",
     ["2024-04-07T01:00+11:00", "2024-04-08T01:00+10:30"]),
    # Lord Howe, 30 minutes forward: 02:00-02:30 does not exist.
    ("Australia/Lord_Howe", "@daily", "2024-10-05T12:00+10:30",
     ["2024-10-06T00:00+10:30", "2024-10-07T00:00+11:00"]),
    ("Australia/Lord_Howe", "@hourly", "2024-10-06T00:30+10:30",
     ["2024-10-06T01:00+10:30", "2024-10-06T02:30+11:00", "2024-10-06T03:00+11:00"]),
    ("Australia/Lord_Howe", "15 2 * * *", "2024-10-05T12:00+10:30",
     ["2024-10-06T02:30+11:00", "2024-10-07T02:15+11:00"]),
    ("Australia/Lord_Howe", "30 2 * * *", "2024-10-05T12:00+10:30",
     ["2024-10-06T02:30+11:00", "2024-10-07T02:30+11:00"]),
    ("Australia/Lord_Howe", "0 1 * * *", "2024-10-05T12:00+10:30",
     ["2024-10-06T01:00+10:30", "2024-10-07T01:00+11:00"]),
    # Sydney, fall back in April: 02:00-03:00 happens twice.
    ("Australia/Sydney", "@daily", "2024-04-06T12:00+11:00",
     ["2024-04-07T00:00+11:00", "2024-04-08T00:00+10:00"]),
    ("Australia/Sydney", "@hourly", "2024-04-07T01:30+11:00",
     ["2024-04-07T02:00+11:00", "2024-04-07T02:00+10:00", "2024-04-07T03:00+10:00"]),
    ("Australia/Sydney", "30 2 * * *", "2024-04-06T12:00+11:00",
     ["2024-04-07T02:30+11:00", "2024-04-08T02:30+10:00"]),
    ("Australia/Sydney", "0 1 * * *", "2024-04-06T12:00+11:00",
     ["2024-04-07T01:00+11:00", "2024-04-08T01:00+10:00"]),
    # Sydney, spring forward in October: 02:00-03:00 does not exist.
    ("Australia/Sydney", "@daily", "2024-10-05T12:00+10:00",
     ["2024-10-06T00:00+10:00", "2024-10-07T00:00+11:00"]),
    ("Australia/Sydney", "@hourly", "2024-10-06T01:30+10:00",
     ["2024-10-06T03:00+11:00", "2024-10-06T04:00+11:00"]),
    ("Australia/Sydney", "30 2 * * *", "2024-10-05T12:00+10:00",
     ["2024-10-06T03:00+11:00", "2024-10-07T02:30+11:00"]),
    ("Australia/Sydney", "0 1 * * *", "2024-10-05T12:00+10:00",
     ["2024-10-06T01:00+10:00", "2024-10-07T01:00+11:00"]),
    # Santiago, midnight repeated as 23:00 of the day before: midnight itself happens once.
    ("America/Santiago", "@daily", "2024-04-05T12:00-03:00",
     ["2024-04-06T00:00-03:00", "2024-04-07T00:00-04:00", "2024-04-08T00:00-04:00"]),
    ("America/Santiago", "@hourly", "2024-04-06T22:30-03:00",
     ["2024-04-06T23:00-03:00", "2024-04-06T23:00-04:00", "2024-04-07T00:00-04:00"]),
    # Santiago, midnight skipped: the daily run happens at the jump, 01:00 -03.
    ("America/Santiago", "@daily", "2024-09-06T12:00-04:00",
     ["2024-09-07T00:00-04:00", "2024-09-08T01:00-03:00", "2024-09-09T00:00-03:00"]),
    ("America/Santiago", "30 2 * * *", "2024-09-07T12:00-04:00",
     ["2024-09-08T02:30-03:00", "2024-09-09T02:30-03:00"]),
]  # fmt: skip

ZONES = sorted({zone for zone, *_ in DST_CASES})


def slots_after(schedule: Schedule, start: datetime, zone: ZoneInfo, count: int) -> list[datetime]:
    slots = []
    current = start
    for _ in range(count):
        current = schedule.next_after(current, zone)
        slots.append(current)
    return slots


def local_text(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="minutes")


def case_id(case: tuple[str, str, str, list[str]]) -> str:
    zone, text, start, _ = case
    return f"{zone}|{text}|{start[:10]}"


@pytest.mark.parametrize("case", DST_CASES, ids=case_id)
def test_next_after_across_dst(case: tuple[str, str, str, list[str]]) -> None:
    zone_name, text, start, expected = case
    zone = ZoneInfo(zone_name)

    slots = slots_after(parse_schedule(text), datetime.fromisoformat(start), zone, len(expected))

    assert [local_text(slot, zone) for slot in slots] == expected


@pytest.mark.parametrize("case", DST_CASES, ids=case_id)
def test_latest_at_or_before_walks_back_across_dst(
    case: tuple[str, str, str, list[str]],
) -> None:
    zone_name, text, _, expected = case
    zone = ZoneInfo(zone_name)
    schedule = parse_schedule(text)
    slots = [datetime.fromisoformat(slot) for slot in expected]

    for earlier, later in itertools.pairwise(slots):
        assert schedule.latest_at_or_before(later, zone) == later
        assert schedule.latest_at_or_before(later - timedelta(seconds=1), zone) == earlier


def test_slots_are_utc() -> None:
    slot = parse_schedule("@daily").next_after(
        datetime(2024, 3, 9, 12, tzinfo=UTC), ZoneInfo("Europe/Berlin")
    )

    assert slot.utcoffset() == timedelta(0)


@pytest.mark.parametrize("zone_name", ZONES)
def test_daily_runs_once_per_local_day(zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    start = datetime(2024, 1, 1, 12, tzinfo=zone)

    slots = slots_after(parse_schedule("@daily"), start, zone, 366)

    days = [slot.astimezone(zone).date() for slot in slots]
    assert days == [date(2024, 1, 2) + timedelta(days=offset) for offset in range(366)]


@pytest.mark.parametrize("zone_name", ["America/New_York", "Europe/Berlin", "Australia/Sydney"])
def test_hourly_runs_every_real_hour(zone_name: str) -> None:
    # In a zone whose offsets are whole hours, minute 0 of every wall hour is minute 0 of
    # every real hour, with the skipped hour merged into the jump and the repeated one run
    # in both folds.
    zone = ZoneInfo(zone_name)
    start = datetime(2024, 1, 1, tzinfo=UTC)

    slots = slots_after(parse_schedule("@hourly"), start, zone, 366 * 24)

    assert slots == [start + timedelta(hours=hour) for hour in range(1, 366 * 24 + 1)]


def transition_windows(zone_name: str) -> list[tuple[datetime, datetime]]:
    """Four days around each transition of the zone that DST_CASES covers."""
    days = sorted(
        {date.fromisoformat(start[:10]) for zone, _, start, _ in DST_CASES if zone == zone_name}
    )
    windows = []
    for day in days:
        begin = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1)
        windows.append((begin, begin + timedelta(days=4)))
    return windows


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize(
    ("text", "longest_gap"),
    [
        # On Lord Howe Island, the half hour that repeats stretches one wall hour to 90 minutes.
        ("@hourly", timedelta(minutes=90)),
        ("*/20 1-3 * * *", timedelta(hours=23)),
        ("30 2 * * *", timedelta(hours=25)),
        ("0 1 * * *", timedelta(hours=25)),
    ],
)
def test_slots_strictly_increase_around_transitions(
    zone_name: str, text: str, longest_gap: timedelta
) -> None:
    zone = ZoneInfo(zone_name)
    schedule = parse_schedule(text)

    for begin, end in transition_windows(zone_name):
        current = begin
        while current < end:
            following = schedule.next_after(current, zone)
            assert following > current
            assert following - current <= longest_gap
            current = following


# (schedule, interval in seconds)
EVERY_CASES = [
    ("@every 1s", 1),
    ("@every 45s", 45),
    ("@every 15m", 900),
    ("@every 60m", 3600),
    ("@every 2h", 7200),
    ("@every  30 m", 1800),
]


@pytest.mark.parametrize(("text", "interval_s"), EVERY_CASES)
def test_every_parses_to_seconds(text: str, interval_s: int) -> None:
    schedule = parse_schedule(text)

    assert schedule.interval_s == interval_s
    assert schedule.expression is None


@pytest.mark.parametrize(("text", "interval_s"), EVERY_CASES)
def test_every_aligns_to_the_epoch(text: str, interval_s: int) -> None:
    schedule = parse_schedule(text)
    zone = ZoneInfo("America/New_York")
    moment = datetime(2024, 3, 10, 6, 59, 58, 500_000, tzinfo=UTC)

    slot = schedule.next_after(moment, zone)

    assert slot.timestamp() % interval_s == 0
    assert moment < slot <= moment + timedelta(seconds=interval_s)


def test_every_gives_every_replica_the_same_slots() -> None:
    schedule = parse_schedule("@every 15m")
    zone = ZoneInfo("UTC")
    first = datetime(2024, 5, 1, 12, 3, 17, tzinfo=UTC)
    second = datetime(2024, 5, 1, 12, 11, 2, tzinfo=UTC)

    assert schedule.next_after(first, zone) == schedule.next_after(second, zone)


def test_every_is_a_plain_interval_across_dst() -> None:
    zone = ZoneInfo("America/New_York")
    start = datetime(2024, 11, 3, 4, 30, tzinfo=UTC)

    slots = slots_after(parse_schedule("@every 60m"), start, zone, 4)

    gaps = {later - earlier for earlier, later in itertools.pairwise(slots)}
    assert gaps == {timedelta(hours=1)}


def test_every_next_after_slot_is_following() -> None:
    schedule = parse_schedule("@every 15m")
    slot = datetime(2024, 5, 1, 12, 15, tzinfo=UTC)

    assert schedule.next_after(slot, ZoneInfo("UTC")) == slot + timedelta(minutes=15)
    assert schedule.latest_at_or_before(slot, ZoneInfo("UTC")) == slot


# (text, expression it stands for, or None for an interval)
VALID_CASES = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("  @daily ", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("*/15 9-17 * * 1-5", "*/15 9-17 * * 1-5"),
    ("30   2 * *  *", "30 2 * * *"),
]


@pytest.mark.parametrize(("text", "expression"), VALID_CASES)
def test_parse_accepts_macros_and_cron(text: str, expression: str) -> None:
    assert parse_schedule(text).expression == expression


INVALID_CASES = [
    "",
    "hourly",
    "@weekly",
    "@every",
    "@every 5",
    "@every 5d",
    "@every -5m",
    "@every 1.5h",
    "* * * *",
    "0 0 * * * *",
    "61 * * * *",
    "0 25 * * *",
]


@pytest.mark.parametrize("text", INVALID_CASES)
def test_parse_error_names_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_schedule(text)

    message = str(raised.value)
    assert "@hourly" in message
    assert "@daily" in message
    assert "@every" in message
    assert "cron" in message


@pytest.mark.parametrize("text", ["@every 0s", "@every 0m"])
def test_parse_rejects_zero_interval(text: str) -> None:
    with pytest.raises(ValueError, match="positive interval"):
        parse_schedule(text)


def test_invalid_schedule_setting_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"ENVSYNC_SCHEDULE": "@fortnightly"}, cwd=tmp_path)

    assert raised.value.setting == "ENVSYNC_SCHEDULE"
    assert "@fortnightly" in str(raised.value)
    assert "@every" in str(raised.value)


def test_invalid_timezone_setting_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"ENVSYNC_TIMEZONE": "Mars/Olympus_Mons"}, cwd=tmp_path)

    assert raised.value.setting == "ENVSYNC_TIMEZONE"
