"""Tickets: one open ticket per target and cause, bumped while the cause lasts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from envsync.store import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_first_report_opens_ticket(store: Store) -> None:
    ticket = store.open_or_bump_ticket("api", "drift", "3 keys differ", "run envsync apply", T0)

    assert ticket.is_open
    assert ticket.count == 1
    assert ticket.opened == T0
    assert ticket.last_seen == T0
    assert ticket.diagnosis == "3 keys differ"
    assert ticket.next_step == "run envsync apply"


def test_recurring_cause_bumps_open_ticket(store: Store) -> None:
    first = store.open_or_bump_ticket("api", "drift", "3 keys differ", "apply", T0)

    later = T0 + timedelta(hours=1)
    bumped = store.open_or_bump_ticket("api", "drift", "4 keys differ", "apply now", later)

    assert bumped.id == first.id
    assert bumped.count == 2
    assert bumped.opened == T0
    assert bumped.last_seen == later
    assert bumped.diagnosis == "4 keys differ"
    assert bumped.next_step == "apply now"


def test_other_cause_opens_second_ticket(store: Store) -> None:
    drift = store.open_or_bump_ticket("api", "drift", "d", "n", T0)

    auth = store.open_or_bump_ticket("api", "auth", "401", "renew the token", T0)

    assert auth.id != drift.id
    assert len(store.list_tickets(open_only=True)) == 2


def test_close_tickets_of_target(store: Store) -> None:
    store.open_or_bump_ticket("api", "drift", "d", "n", T0)
    store.open_or_bump_ticket("api", "auth", "d", "n", T0)
    store.open_or_bump_ticket("web", "drift", "d", "n", T0)

    closed = store.close_tickets("api", now=T0 + timedelta(minutes=5))

    assert closed == 2
    assert [ticket.target for ticket in store.list_tickets(open_only=True)] == ["web"]


def test_close_tickets_of_given_causes(store: Store) -> None:
    store.open_or_bump_ticket("api", "drift", "d", "n", T0)
    store.open_or_bump_ticket("api", "auth", "d", "n", T0)

    closed = store.close_tickets("api", causes=["auth"], now=T0)

    assert closed == 1
    assert [ticket.cause for ticket in store.list_tickets(open_only=True)] == ["drift"]


def test_closed_ticket_records_time(store: Store) -> None:
    store.open_or_bump_ticket("api", "drift", "d", "n", T0)
    closed_at = T0 + timedelta(minutes=5)

    store.close_tickets("api", now=closed_at)

    (ticket,) = store.list_tickets()
    assert ticket.closed == closed_at
    assert not ticket.is_open


def test_cause_after_close_opens_new_ticket(store: Store) -> None:
    first = store.open_or_bump_ticket("api", "drift", "d", "n", T0)
    store.close_tickets("api", now=T0)

    second = store.open_or_bump_ticket("api", "drift", "d", "n", T0 + timedelta(hours=1))

    assert second.id != first.id
    assert second.count == 1
    assert len(store.list_tickets()) == 2


def test_close_without_open_tickets_closes_none(store: Store) -> None:
    assert store.close_tickets("api", now=T0) == 0


def test_list_tickets_filters_by_target(store: Store) -> None:
    store.open_or_bump_ticket("api", "drift", "d", "n", T0)
    store.open_or_bump_ticket("web", "drift", "d", "n", T0)

    assert [ticket.target for ticket in store.list_tickets(target="web")] == ["web"]


def test_list_tickets_most_recent_first(store: Store) -> None:
    store.open_or_bump_ticket("api", "drift", "d", "n", T0)
    store.open_or_bump_ticket("web", "drift", "d", "n", T0 + timedelta(minutes=1))

    assert [ticket.target for ticket in store.list_tickets()] == ["web", "api"]


def test_concurrent_bumps_leave_one_open_ticket(store: Store) -> None:
    def bump(index: int) -> str:
        seen = T0 + timedelta(seconds=index)
        return store.open_or_bump_ticket("api", "rate_limited", "429", "wait", seen).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(bump, range(80)))

    tickets = store.list_tickets(open_only=True)
    assert len(tickets) == 1
    assert ids == {tickets[0].id}
    assert tickets[0].count == 80
