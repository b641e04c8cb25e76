"""The emulators' control API, fault injection, request log and server lifecycle."""

from __future__ import annotations

import concurrent.futures
import json
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from envsync.emulators import EmulatorSet, default_seed, run_emulators

SERVICE_ID = "srv-d0emu0api00000000000"


@pytest.fixture
def render(emulators: EmulatorSet) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emulators.render_token}"}
    with httpx.Client(base_url=emulators.render_url, headers=headers) as client:
        yield client


@pytest.fixture
def control(emulators: EmulatorSet) -> Iterator[httpx.Client]:
    """A client for the Render emulator's /_emulator/ API."""
    origin = emulators.render_url.removesuffix("/v1")
    with httpx.Client(base_url=f"{origin}/_emulator") as client:
        yield client


def seed_vars(emulators: EmulatorSet, count: int) -> None:
    state = emulators.state("render")
    state["services"][0]["envVars"] = [{"key": f"K{n}", "value": "v"} for n in range(count)]
    emulators.seed({"render": state})


# Request log.


def test_log_records_calls_in_arrival_order(
    emulators: EmulatorSet, render: httpx.Client, control: httpx.Client
) -> None:
    render.get("/services", params={"limit": 5})
    render.put(f"/services/{SERVICE_ID}/env-vars/A", json={"value": "secret-value"})

    log = control.get("/requests").json()

    assert [(e["method"], e["path"], e["query"], e["status"]) for e in log] == [
        ("GET", "/v1/services", "limit=5", 200),
        ("PUT", f"/v1/services/{SERVICE_ID}/env-vars/A", "", 200),
    ]
    assert log[1]["keys"] == ["A"]
    assert all(e["started"] <= e["ended"] for e in log)
    assert "secret-value" not in json.dumps(log)


def test_control_calls_are_not_logged(control: httpx.Client) -> None:
    control.get("/state")

    assert control.get("/requests").json() == []


def test_log_can_be_emptied(render: httpx.Client, control: httpx.Client) -> None:
    render.get("/services")

    control.delete("/requests")

    assert control.get("/requests").json() == []


# Faults.


def test_status_fault_applies_given_times(render: httpx.Client, control: httpx.Client) -> None:
    rule = {
        "match": {"method": "GET", "path": "/env-vars$"},
        "times": 2,
        "fault": {"status": 429, "headers": {"Retry-After": "7"}, "body": {"message": "slow"}},
    }
    assert control.post("/faults", json=rule).status_code == 201

    answers = [render.get(f"/services/{SERVICE_ID}/env-vars") for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "7"
    assert answers[0].json() == {"message": "slow"}


def test_fault_matches_method_and_path(render: httpx.Client, control: httpx.Client) -> None:
    control.post("/faults", json={"match": {"method": "PUT"}, "fault": {"status": 503}})

    read = render.get(f"/services/{SERVICE_ID}/env-vars")
    write = render.put(f"/services/{SERVICE_ID}/env-vars", json=[])

    assert read.status_code == 200
    assert write.status_code == 503


def test_latency_fault_delays_the_answer(emulators: EmulatorSet, render: httpx.Client) -> None:
    emulators.add_fault("render", {"fault": {"latency_ms": 300}})

    assert render.get("/services").status_code == 200

    entry = emulators.requests("render")[-1]
    assert entry["ended"] - entry["started"] >= 0.25


def test_latency_lets_requests_overlap(emulators: EmulatorSet) -> None:
    emulators.configure("render", latency_ms=300)
    headers = {"Authorization": f"Bearer {emulators.render_token}"}

    def fetch(_: int) -> int:
        return httpx.get(f"{emulators.render_url}/services", headers=headers).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(fetch, range(4)))

    log = emulators.requests("render")
    assert statuses == [200] * 4
    assert max(e["started"] for e in log) < min(e["ended"] for e in log)


def test_drop_fault_closes_without_answer(emulators: EmulatorSet, render: httpx.Client) -> None:
    emulators.add_fault("render", {"match": {"path": "env-vars"}, "fault": {"drop": True}})

    with pytest.raises(httpx.RemoteProtocolError):
        render.get(f"/services/{SERVICE_ID}/env-vars")

    assert emulators.requests("render")[-1]["status"] is None
    assert render.get(f"/services/{SERVICE_ID}/env-vars").status_code == 200


def test_truncate_fault_cuts_the_body(emulators: EmulatorSet, render: httpx.Client) -> None:
    seed_vars(emulators, 5)
    emulators.add_fault("render", {"fault": {"truncate": True}})

    with pytest.raises(httpx.RemoteProtocolError):
        render.get(f"/services/{SERVICE_ID}/env-vars")


def test_raw_body_fault_sends_malformed_json(emulators: EmulatorSet, render: httpx.Client) -> None:
    emulators.add_fault("render", {"fault": {"status": 200, "raw_body": "{not json"}})

    response = render.get("/services")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_repeat_cursor_hands_back_given_cursor(
    emulators: EmulatorSet, render: httpx.Client
) -> None:
    seed_vars(emulators, 5)
    emulators.add_fault("render", {"fault": {"repeat_cursor": True}})
    first = render.get(f"/services/{SERVICE_ID}/env-vars", params={"limit": 2}).json()
    cursor = first[-1]["cursor"]

    second = render.get(
        f"/services/{SERVICE_ID}/env-vars", params={"limit": 2, "cursor": cursor}
    ).json()

    assert first[-1]["cursor"] != first[0]["cursor"]
    assert second[-1]["cursor"] == cursor
    assert emulators.emulator("render").faults.pending() == []


@pytest.mark.parametrize(
    "rule",
    [
        {"fault": {}},
        {"fault": {"status": 429, "drop": True}},
        {"fault": {"status": 99}},
        {"fault": {"drop": "yes"}},
        {"times": 0, "fault": {"drop": True}},
        {"match": {"path": "("}, "fault": {"drop": True}},
        {"fault": {"latency_ms": -1}},
    ],
)
def test_invalid_fault_is_rejected(control: httpx.Client, rule: dict[str, Any]) -> None:
    response = control.post("/faults", json=rule)

    assert response.status_code == 400
    assert response.json()["error"]


def test_faults_can_be_listed_and_cleared(control: httpx.Client) -> None:
    control.post("/faults", json={"match": {"method": "GET"}, "times": 3, "fault": {"drop": True}})

    pending = control.get("/faults").json()
    control.delete("/faults")

    assert pending == [{"kind": "drop", "times": 3, "method": "GET", "path": None}]
    assert control.get("/faults").json() == []


@pytest.mark.parametrize("api", ["netlify", "vault"])
def test_faults_work_on_every_emulator(emulators: EmulatorSet, api: str) -> None:
    emulators.add_fault(api, {"fault": {"status": 500, "body": {"x": 1}}})
    url = (
        emulators.netlify_url + "/accounts"
        if api == "netlify"
        else emulators.vault_url + "/v1/sys/health"
    )

    response = httpx.get(url)

    assert response.status_code == 500


# Seed, state, reset, config.


def test_state_round_trips_through_seed(emulators: EmulatorSet, control: httpx.Client) -> None:
    state = control.get("/state").json()
    state["services"][0]["envVars"] = [{"key": "A", "value": "1"}, {"key": "B", "value": "2"}]

    control.post("/seed", json=state)

    assert control.get("/state").json()["services"][0]["envVars"] == state["services"][0]["envVars"]


def test_invalid_seed_is_rejected_and_state_kept(control: httpx.Client) -> None:
    before = control.get("/state").json()

    response = control.post("/seed", json={"services": [{"name": "orphan", "ownerId": "tea-x"}]})

    assert response.status_code == 400
    assert control.get("/state").json() == before


def test_reset_restores_everything(
    emulators: EmulatorSet, render: httpx.Client, control: httpx.Client
) -> None:
    start = control.get("/state").json()
    render.put(f"/services/{SERVICE_ID}/env-vars/A", json={"value": "1"})
    control.post("/faults", json={"fault": {"drop": True}})
    control.post("/config", json={"empty_value": "accept"})

    control.post("/reset")

    assert control.get("/state").json() == start
    assert control.get("/requests").json() == []
    assert control.get("/faults").json() == []
    assert control.get("/config").json()["empty_value"] == "reject"


def test_reset_refills_rate_windows(emulators: EmulatorSet, render: httpx.Client) -> None:
    for _ in range(10):
        render.post(f"/services/{SERVICE_ID}/deploys", json={})

    emulators.reset()

    assert render.post(f"/services/{SERVICE_ID}/deploys", json={}).status_code == 201


@pytest.mark.parametrize(
    "change",
    [{"nonsense": 1}, {"empty_value": "maybe"}, {"latency_ms": -5}, {"rate_limits": "no"}],
)
def test_invalid_config_is_rejected(control: httpx.Client, change: dict[str, Any]) -> None:
    response = control.post("/config", json=change)

    assert response.status_code == 400


def test_vault_history_survives_a_reseed(emulators: EmulatorSet) -> None:
    headers = {"X-Vault-Token": emulators.vault_token}
    httpx.delete(f"{emulators.vault_url}/v1/secret/data/envsync", headers=headers)
    state = emulators.state("vault")

    emulators.seed({"vault": state})

    response = httpx.get(f"{emulators.vault_url}/v1/secret/data/envsync", headers=headers)
    assert response.status_code == 404
    assert response.json()["data"]["metadata"]["deletion_time"]
    assert emulators.state("vault") == state


def test_netlify_state_round_trips(emulators: EmulatorSet) -> None:
    state = emulators.state("netlify")
    state["sites"][0]["env"] = [
        {
            "key": "K",
            "is_secret": True,
            "scopes": ["builds"],
            "values": [{"context": "branch", "context_parameter": "staging", "value": "W"}],
        }
    ]

    emulators.seed({"netlify": state})
    [var] = emulators.state("netlify")["sites"][0]["env"]

    assert var["values"][0]["value"] == "W"
    assert var["values"][0]["context_parameter"] == "staging"
    assert uuid.UUID(var["values"][0]["id"])


# Default seed and server.


def test_default_seed_ids_have_platform_formats() -> None:
    seed = default_seed()

    assert re.fullmatch(r"srv-[0-9a-v]{20}", seed["render"]["services"][0]["id"])
    assert re.fullmatch(r"tea-[0-9a-v]{20}", seed["render"]["owners"][0]["id"])
    assert re.fullmatch(r"[0-9a-f]{24}", seed["netlify"]["accounts"][0]["id"])
    assert uuid.UUID(seed["netlify"]["sites"][0]["id"]).version == 4
    assert seed["vault"]["mounts"] == {"secret": {"envsync": {}}}


def test_urls_have_the_real_base_paths(emulators: EmulatorSet) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", emulators.render_url)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", emulators.netlify_url)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulators.vault_url)


def test_only_loopback_hosts_are_served() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorSet(host="0.0.0.0")


def test_seed_option_sets_the_start_state() -> None:
    seed = {"vault": {"tokens": ["hvs.custom"], "mounts": {"kv": {"app": {"A": "1"}}}}}

    with EmulatorSet(seed) as emulators:
        response = httpx.get(
            f"{emulators.vault_url}/v1/kv/data/app", headers={"X-Vault-Token": "hvs.custom"}
        )

    assert response.json()["data"]["data"] == {"A": "1"}
    assert emulators.render_token == default_seed()["render"]["tokens"][0]


@pytest.mark.parametrize("as_json", [False, True])
def test_run_emulators_prints_urls_and_tokens(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    stop = threading.Event()
    served: list[int] = []

    def check(emulators: EmulatorSet) -> None:
        served.append(httpx.get(f"{emulators.vault_url}/v1/sys/health").status_code)
        stop.set()

    run_emulators(0, 0, 0, as_json=as_json, ready=check, stop=stop)

    printed = capsys.readouterr().out.strip()
    assert served == [200]
    tokens = [default_seed()[api]["tokens"][0] for api in ("render", "netlify", "vault")]
    if as_json:
        document = json.loads(printed)
        assert [document[api]["token"] for api in ("render", "netlify", "vault")] == tokens
        assert document["netlify"]["url"].endswith("/api/v1")
    else:
        lines = printed.splitlines()
        assert [line.split()[0] for line in lines] == ["render", "netlify", "vault"]
        assert all(token in line for token, line in zip(tokens, lines, strict=True))


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _default_sigint() -> None:
    # As in a terminal, whatever the disposition of the test run itself.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("stop_signal", "background"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["sigint", "sigterm", "sigterm-with-sigint-ignored"],
)
def test_emulate_stops_cleanly_on_signal(stop_signal: int, background: bool) -> None:
    # A shell without job control starts `envsync emulate &` with SIGINT ignored, so
    # SIGTERM has to stop it on its own.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "envsync",
            "emulate",
            "--json",
            "--render-port",
            "0",
            "--netlify-port",
            "0",
            "--vault-port",
            "0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if background else _default_sigint,
    )
    try:
        assert process.stdout is not None
        render_url = json.loads(process.stdout.readline())["render"]["url"]
        served = httpx.get(f"{render_url.removesuffix('/v1')}/_emulator/config", timeout=10)
    finally:
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=30)

    assert served.status_code == 200
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(render_url, timeout=5)
