"""The least the platforms allow: requests per sync, and wall time over many targets.

Minimum requests for one target given by id (no `auto` look-ups):

- Render service: a complete read takes pages of at most 100 (Render's API docs,
  pagination page: `limit` is at most 100), and the list ends at a page shorter than the
  limit (an empty page when the count is a multiple of 100): floor(n / 100) + 1 reads.
  Bulk mode writes once (a PUT of the whole list, which also carries ENVSYNC_OWNERSHIP
  when the ledger lives on the target); per-key mode writes once per changed key, plus
  once for ENVSYNC_OWNERSHIP.
- Render environment group: one read (`GET /env-groups/{id}` returns every variable and
  is not paginated) and one write per changed key, plus the ownership write. Groups have no
  bulk write.
- Netlify site: two reads (the site, for its account, then the site's variables, which are
  not paginated), one batched POST for every new key, one PATCH per changed context value,
  plus the ownership write.

A lower bound on wall time for a run whose requests fall into rate-limit buckets b, each
allowing L_b requests per window W, at a latency of l seconds per request and with chains
of at most d requests that must wait for each other (pages of one list, then a write):

    T_bound = max(d * l, max_b((ceil(n_b / L_b) - 1) * W + l))

since the k-th window of a bucket cannot open before (k - 1) * W and its last request
still takes l. Render counts GETs (400) and env-var writes (100) per token; Netlify
counts every request (500) per token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

RENDER_PAGE = 100
RENDER_LIMITS = {"render GET": 400, "render write": 100}
NETLIFY_LIMITS = {"netlify": 500}


@dataclass(frozen=True, slots=True)
class Minimum:
    """The fewest reads and writes one sync of one target can make."""

    reads: int
    writes: int

    @property
    def total(self) -> int:
        return self.reads + self.writes


def render_service(
    remote_count: int, changed: int, *, write_mode: str, ledger_on_target: bool
) -> Minimum:
    reads = remote_count // RENDER_PAGE + 1
    if changed == 0:
        return Minimum(reads, 0)
    if write_mode == "bulk":
        return Minimum(reads, 1)
    return Minimum(reads, changed + int(ledger_on_target))


def render_group(changed: int, *, ledger_on_target: bool) -> Minimum:
    if changed == 0:
        return Minimum(1, 0)
    return Minimum(1, changed + int(ledger_on_target))


def netlify_site(changed_values: int, new_keys: int, *, ledger_on_target: bool) -> Minimum:
    writes = changed_values + int(new_keys > 0)
    if writes and ledger_on_target:
        writes += 1
    return Minimum(2, writes)


@dataclass(frozen=True, slots=True)
class Bound:
    """A wall-time lower bound and the term that sets it."""

    seconds: float
    latency_s: float
    rate_s: float

    @property
    def limited_by(self) -> str:
        return "rate limits" if self.rate_s > self.latency_s else "latency"


def wall_time_bound(
    counts: Mapping[str, int],
    limits: Mapping[str, int],
    *,
    window_s: float,
    latency_s: float,
    depth: int,
) -> Bound:
    """T_bound from the module docstring; `counts` are requests per rate-limit bucket."""
    latency_term = depth * latency_s
    rate_term = 0.0
    for bucket, count in counts.items():
        if count == 0:
            continue
        windows = math.ceil(count / limits[bucket])
        rate_term = max(rate_term, (windows - 1) * window_s + latency_s)
    return Bound(max(latency_term, rate_term), latency_term, rate_term)


def bucket_of(api: str, method: str) -> str:
    """Return the rate-limit bucket of one request, as the emulators count them."""
    if api == "netlify":
        return "netlify"
    return "render GET" if method == "GET" else "render write"
