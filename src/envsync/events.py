"""The event bus: ENVSYNC_DRIFT_DETECTED, ENVSYNC_COMPLETE and ENVSYNC_FAILED.

An event names keys, never values:

    {"id", "type", "time", "provider", "target", "run_id",
     "counts": {"create", "update", "delete", "noop", "rejected"}, "keys": [...], "errors": [...]}

Handlers subscribe per event type (or "*" for every type). A handler that raises is logged
and never stops the sync or the other handlers. Sinks that do I/O (webhooks) queue their
work and return at once, so publishing never blocks a sync.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from envsync.model import Op, TargetResult

logger = logging.getLogger(__name__)

DRIFT_DETECTED = "ENVSYNC_DRIFT_DETECTED"
COMPLETE = "ENVSYNC_COMPLETE"
FAILED = "ENVSYNC_FAILED"
EVENT_TYPES = (DRIFT_DETECTED, COMPLETE, FAILED)

Handler = Callable[["Event"], None]


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    time: str
    provider: str
    target: str
    run_id: str
    counts: dict[str, int]
    keys: list[str]
    errors: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "time": self.time,
            "provider": self.provider,
            "target": self.target,
            "run_id": self.run_id,
            "counts": dict(self.counts),
            "keys": list(self.keys),
            "errors": list(self.errors),
        }


@dataclass
class EventBus:
    """An in-process publish and subscribe bus."""

    _handlers: dict[str, list[Handler]] = field(default_factory=dict)

    def subscribe(self, event_type: str, handler: Handler) -> Callable[[], None]:
        """Call `handler` for every event of `event_type` ("*" for all); return an unsubscriber."""
        if event_type != "*" and event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
        handlers = self._handlers.setdefault(event_type, [])
        handlers.append(handler)
        return lambda: handlers.remove(handler)

    def publish(self, event: Event) -> None:
        for handler in [*self._handlers.get(event.type, []), *self._handlers.get("*", [])]:
            try:
                handler(event)
            except Exception:
                logger.exception("event handler %r failed on %s %s", handler, event.type, event.id)


def events_for(result: TargetResult) -> list[Event]:
    """The events one target's result gives rise to, in the order they are published."""
    events = []
    plan = result.plan
    if plan is not None and plan.has_changes:
        events.append(_event(DRIFT_DETECTED, result))
    if result.mode == "enforce" and plan is not None:
        events.append(_event(COMPLETE, result))
    if not result.ok:
        events.append(_event(FAILED, result))
    return events


def _event(event_type: str, result: TargetResult) -> Event:
    plan = result.plan
    counts = {op.value: 0 for op in Op} | {"rejected": 0}
    keys: list[str] = []
    if plan is not None:
        counts.update({op.value: plan.count(op) for op in Op})
        counts["rejected"] = len(plan.rejected)
        changes = result.written if event_type == COMPLETE else plan.pending
        keys = sorted({change.key for change in changes})
    return Event(
        id=uuid.uuid4().hex,
        type=event_type,
        time=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        provider=result.target.provider,
        target=result.target.name,
        run_id=result.run_id,
        counts=counts,
        keys=keys,
        errors=problems(result),
    )


def problems(result: TargetResult) -> list[str]:
    """Every error of a target's result as text: failures, rejected keys and conflicts."""
    texts = list(result.errors)
    if result.plan is not None:
        texts += [f"rejected {r.key}: {r.reason}" for r in result.plan.rejected]
        texts += [f"conflict {c.key}: {c.reason}" for c in result.plan.conflicts]
    return texts


def log_sink(event: Event) -> None:
    """The log sink: one INFO line per event, with key names and counts only."""
    logger.info(
        "%s target=%s run=%s counts=%s keys=%s",
        event.type,
        event.target,
        event.run_id,
        event.counts,
        ",".join(event.keys) or "-",
    )
