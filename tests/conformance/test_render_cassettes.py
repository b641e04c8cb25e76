"""Replay recorded Render API traffic against the Render emulator, interaction by interaction.

Every interaction of every cassette is sent in recorded order, so the services and groups
the recordings create exist for the calls that follow. Interactions with endpoints envsync
never calls are sent too, to keep the state in step, but are counted as skipped instead of
compared.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from envsync.emulators import EmulatorSet
from tests.conformance.render_replay import (
    Interaction,
    Substitutions,
    compare_bodies,
    compare_headers,
    endpoint_of,
    load_interactions,
    parse_body,
)
from tests.conftest import shared_path

OWNER_ID = "tea-d0replay0owner000000"
TOKEN = "rnd_replayToken000000000000000000"

# The owner id every recording uses in place of a real one.
RECORDED_OWNER_ID = "some-owner-id"

# Request headers sent as recorded. Authorization is replaced with the emulator's token.
_SENT_HEADERS = ("Content-Type", "User-Agent", "Accept")


@dataclass
class Tally:
    matched: int = 0
    mismatches: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_but_matching: int = 0
    variable_interactions: int = 0
    variable_matched: int = 0

    def summary(self) -> str:
        lines = [
            f"Render cassettes: {self.matched} matched, {len(self.mismatches)} mismatched, "
            f"{sum(self.skipped.values())} skipped (out of envsync's scope; "
            f"{self.skipped_but_matching} of them match all the same)",
            f"  env-var and env-group interactions: {self.variable_matched} of "
            f"{self.variable_interactions} matched",
        ]
        lines.extend(
            f"  skipped {count:3d} x {name}" for name, count in sorted(self.skipped.items())
        )
        lines.extend(f"  MISMATCH {line}" for line in self.mismatches)
        return "\n".join(lines)


def replay_seed() -> dict[str, object]:
    return {
        "tokens": [TOKEN],
        "owners": [{"id": OWNER_ID, "name": "Replay Team", "type": "team"}],
        "services": [],
        "envGroups": [],
    }


def send(
    client: httpx.Client, interaction: Interaction, substitutions: Substitutions
) -> httpx.Response:
    headers = {
        name: value for name, value in interaction.request_headers.items() if name in _SENT_HEADERS
    }
    headers["Authorization"] = f"Bearer {TOKEN}"
    body = substitutions.apply(interaction.request_body).encode("utf-8")
    target = substitutions.apply(interaction.target)
    return client.request(interaction.method, target, headers=headers, content=body or None)


def differences(
    interaction: Interaction, response: httpx.Response, substitutions: Substitutions
) -> list[str]:
    found: list[str] = []
    if response.status_code != interaction.status:
        found.append(f"status: recorded {interaction.status}, served {response.status_code}")
    found.extend(compare_headers(interaction.response_headers, dict(response.headers)))
    recorded, served = parse_body(interaction.response_body), parse_body(response.text)
    found.extend(compare_bodies(recorded, served, substitutions))
    return found


def replay(client: httpx.Client, interactions: list[Interaction], tally: Tally) -> None:
    substitutions = Substitutions({RECORDED_OWNER_ID: OWNER_ID})
    for interaction in interactions:
        response = send(client, interaction, substitutions)
        recorded_body = parse_body(interaction.response_body)
        served_body = parse_body(response.text)
        substitutions.learn(recorded_body, served_body)

        endpoint = endpoint_of(interaction.method, interaction.path)
        found = differences(interaction, response, substitutions)
        if not endpoint.in_scope:
            tally.skipped[f"{interaction.method} {endpoint.template}"] += 1
            tally.skipped_but_matching += not found
            continue

        tally.variable_interactions += endpoint.variables
        if found:
            tally.mismatches.extend(f"{interaction.label}: {line}" for line in found)
            continue
        tally.matched += 1
        tally.variable_matched += endpoint.variables


def test_recorded_render_traffic_replays_identically(
    emulators: EmulatorSet, capsys: pytest.CaptureFixture[str]
) -> None:
    cassettes = sorted(shared_path("specs", "render", "cassettes").glob("*.yaml"))
    origin = emulators.render_url.removesuffix("/v1")
    tally = Tally()

    with httpx.Client(base_url=origin) as client:
        for cassette in cassettes:
            emulators.seed({"render": replay_seed()})
            replay(client, load_interactions(cassette), tally)

    with capsys.disabled():
        print(f"\n{tally.summary()}")
    assert cassettes, "no cassettes found"
    assert tally.mismatches == []
    assert tally.variable_interactions > 0
    assert tally.variable_matched == tally.variable_interactions


# The comparison itself, so that the replay above can fail.


@pytest.mark.parametrize(
    ("recorded", "served", "expected"),
    [
        ({"key": "A", "value": "1"}, {"key": "A", "value": "1"}, []),
        ({"key": "A", "value": "1"}, {"key": "A"}, ["$.value: recorded but not served"]),
        ({"key": "A"}, {"key": "A", "extra": 1}, ["$.extra: served but not recorded"]),
        (
            {"key": "A", "value": "1"},
            {"key": "A", "value": 1},
            ["$.value: recorded a string, served a number"],
        ),
        (
            [{"key": "A"}, {"key": "B"}],
            [{"key": "B"}, {"key": "A"}],
            [
                "$[0].key: value differs",
                "$[1].key: value differs",
            ],
        ),
        ([{"key": "A"}], [], ["$: recorded 1 items, served 0"]),
        (
            {"id": "evg-crbps4bqf0us73dfggr0", "updatedAt": "2024-09-03T23:38:59.437635Z"},
            {"id": "evg-0123456789abcdefghij", "updatedAt": "2026-01-01T00:00:00.000001Z"},
            [],
        ),
        (
            {"id": "evg-crbps4bqf0us73dfggr0"},
            {"id": "srv-0123456789abcdefghij"},
            ["$.id: served value is not the same kind of issued value"],
        ),
    ],
)
def test_body_comparison_finds_differences(
    recorded: object, served: object, expected: list[str]
) -> None:
    assert compare_bodies(recorded, served, Substitutions()) == expected


def test_substituted_value_must_be_served() -> None:
    substitutions = Substitutions({RECORDED_OWNER_ID: OWNER_ID})

    assert (
        compare_bodies({"ownerId": RECORDED_OWNER_ID}, {"ownerId": OWNER_ID}, substitutions) == []
    )
    assert compare_bodies({"ownerId": RECORDED_OWNER_ID}, {"ownerId": "x"}, substitutions) == [
        "$.ownerId: value differs"
    ]


def test_learned_ids_rewrite_later_requests() -> None:
    substitutions = Substitutions()
    substitutions.learn(
        [{"envVar": {"key": "foo"}, "cursor": "DLRR7F1e8FhuNWRqMHE1czcwMGNrZ2Rn"}],
        [{"envVar": {"key": "foo"}, "cursor": "ZW52c3luYy1lbXVsYXRvcgAAAAAAAAAH"}],
    )

    rewritten = substitutions.apply(
        "/v1/services/x/env-vars?cursor=DLRR7F1e8FhuNWRqMHE1czcwMGNrZ2Rn"
    )

    assert rewritten == "/v1/services/x/env-vars?cursor=ZW52c3luYy1lbXVsYXRvcgAAAAAAAAAH"


@pytest.mark.parametrize(
    ("recorded", "served", "expected"),
    [
        ({"Ratelimit-Limit": "400"}, {"ratelimit-limit": "400"}, []),
        ({"Ratelimit-Limit": "400"}, {}, ["header Ratelimit-Limit: missing"]),
        (
            {},
            {"content-type": "application/json"},
            ["header Content-Type: not recorded but served"],
        ),
        (
            {"Ratelimit-Limit": "400"},
            {"ratelimit-limit": "100"},
            ["header Ratelimit-Limit: recorded '400', served '100'"],
        ),
        ({"Ratelimit-Reset": "42"}, {"ratelimit-reset": "7"}, []),
    ],
)
def test_header_comparison_finds_differences(
    recorded: dict[str, str], served: dict[str, str], expected: list[str]
) -> None:
    assert compare_headers(recorded, served) == expected
