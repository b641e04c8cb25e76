"""Fixed-window rate limiting for the emulators, per token and bucket."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    """A class of requests that share one limit, such as every GET to Render."""

    name: str
    limit: int
    window_s: float


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The limiter's verdict on one request and the numbers for the rate-limit headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_after_s: int
    reset_at: int


class RateLimiter:
    """Counts requests per (token, bucket) in fixed windows.

    A window opens with the first request of its bucket and lasts the bucket's real window
    length, or `window_override_s` for every bucket when that is set, so that tests can
    watch a window end without waiting a minute. When `enforce` is false the limiter
    still counts and reports but never refuses.
    """

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    def clear(self) -> None:
        self._windows.clear()

    def check(
        self,
        client: str,
        bucket: Bucket,
        *,
        now: float,
        enforce: bool,
        window_override_s: float | None,
    ) -> RateDecision:
        window_s = window_override_s if window_override_s is not None else bucket.window_s
        slot = (client, bucket.name)
        opened, count = self._windows.get(slot, (now, 0))
        if now >= opened + window_s:
            opened, count = now, 0

        allowed = count < bucket.limit or not enforce
        if allowed:
            count += 1
        self._windows[slot] = (opened, count)

        reset_at = opened + window_s
        return RateDecision(
            allowed=allowed,
            limit=bucket.limit,
            remaining=max(0, bucket.limit - count),
            reset_after_s=max(0, math.ceil(reset_at - now)),
            reset_at=math.ceil(reset_at),
        )
