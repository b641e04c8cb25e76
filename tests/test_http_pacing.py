"""Rate-limit pacing in the HTTP layer: a window is spent from when a request is sent, and
many concurrent requests stay within the platform's window instead of getting 429 responses."""

from __future__ import annotations

import asyncio

import httpx

from envsync.emulators import EmulatorSet
from envsync.http import ApiClient, RateLimitPacer, RetryPolicy
from envsync.model import SecretValue


def window(remaining: int, reset_epoch: int = 2_000_000_000) -> httpx.Headers:
    return httpx.Headers(
        {"X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset_epoch)}
    )


def test_take_refuses_a_spent_window() -> None:
    pacer = RateLimitPacer()
    pacer.take("all")
    pacer.observe("all", window(1))

    assert pacer.take("all") is True
    assert pacer.take("all") is False


def test_unknown_window_lets_requests_through() -> None:
    pacer = RateLimitPacer()

    assert all(pacer.take("all") for _ in range(10))


def test_remaining_discounts_requests_in_flight() -> None:
    pacer = RateLimitPacer()
    for _ in range(3):
        pacer.take("all")

    # The response to one of three requests in flight: the other two are not in its count.
    pacer.observe("all", window(10))

    assert pacer.bucket("all").remaining == 8


def test_late_response_does_not_raise_the_count() -> None:
    pacer = RateLimitPacer()
    pacer.take("all")
    pacer.take("all")

    pacer.observe("all", window(5))
    # The response to the earlier request arrives last, with a count from before the other.
    pacer.observe("all", window(6))

    assert pacer.bucket("all").remaining == 4


def test_failed_request_leaves_the_flight() -> None:
    pacer = RateLimitPacer()
    pacer.take("all")

    pacer.observe("all", None)

    assert pacer.bucket("all").in_flight == 0


def test_concurrent_requests_draw_no_429(emulators: EmulatorSet) -> None:
    # 600 requests against Netlify's 500 per window, in a 1 s window, 16 at a time.
    emulators.configure("netlify", rate_window_s=1.0)

    async def send_all() -> None:
        client = ApiClient(
            provider="netlify",
            base_url=emulators.netlify_url,
            token=SecretValue(emulators.netlify_token),
            policy=RetryPolicy(max_retries=6, base_s=0.05, max_s=0.5, timeout_s=10),
            concurrency=16,
        )
        try:
            await asyncio.gather(
                *(client.get("/accounts", operation="list", bucket="all") for _ in range(600))
            )
        finally:
            await client.aclose()

    asyncio.run(send_all())

    statuses = [entry["status"] for entry in emulators.requests("netlify")]
    assert len(statuses) == 600
    assert statuses.count(429) == 0
