"""load_canonical over the file, env, dashboard and bridge-style vault sources.

HTTP sources run against real loopback servers; HashiCorp Vault has its own test module,
which runs against the Vault emulator.
"""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path
from typing import Any

import pytest

from envsync.config import OWNERSHIP_KEY
from envsync.errors import ConfigError, DotenvParseError, SourceError, SourceFetchError
from envsync.model import CanonicalSet, SecretValue
from envsync.sources import SOURCE_LOADERS, load_canonical
from tests.sources.loopback import LoopbackServer, Reply, make_settings

CANARY = "canary-value-83d2c4e1a9"
DASHBOARD_PATH = "/api/envsync/canonical"
BRIDGE_PATH = "/bridge/vault/secrets"


def load(settings_values: dict[str, str] | None = None, **options: Any) -> CanonicalSet:
    settings = make_settings(**(settings_values or {}))
    return asyncio.run(load_canonical(settings, **options))


def revealed(canonical: CanonicalSet) -> dict[str, str]:
    return {key: value.reveal() for key, value in canonical.values.items()}


def dashboard_settings(server: LoopbackServer, **extra: str) -> dict[str, str]:
    return {
        "ENVSYNC_CANONICAL_SOURCE": "dashboard",
        "ENVSYNC_DASHBOARD_URL": f"{server.url}{DASHBOARD_PATH}",
        "ENVSYNC_DASHBOARD_AUTH_TOKEN": CANARY,
        **extra,
    }


def bridge_settings(server: LoopbackServer, **extra: str) -> dict[str, str]:
    return {
        "ENVSYNC_CANONICAL_SOURCE": "vault",
        "ENVSYNC_VAULT_URL": server.url,
        "ENVSYNC_VAULT_AUTH_TOKEN": CANARY,
        **extra,
    }


def test_registry_names_every_source() -> None:
    assert sorted(SOURCE_LOADERS) == ["dashboard", "env", "file", "vault"]


def test_unknown_source_is_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load(source="consul")

    assert caught.value.setting == "ENVSYNC_CANONICAL_SOURCE"
    assert "file, env, vault, dashboard" in str(caught.value)


# --- env -------------------------------------------------------------------------------


def test_env_source_reads_given_environment() -> None:
    canonical = load(source="env", environ={"BRIDGE_A": "1", "PATH": "/bin"})

    assert canonical.origin == "env"
    assert revealed(canonical) == {"BRIDGE_A": "1", "PATH": "/bin"}


def test_env_source_drops_reserved_names_with_warning() -> None:
    environ = {
        "BRIDGE_A": "1",
        "RENDER_API_TOKEN": CANARY,
        "VAULT_TOKEN": CANARY,
        OWNERSHIP_KEY: "{}",
    }

    canonical = load(source="env", environ=environ)

    assert list(canonical.values) == ["BRIDGE_A"]
    [warning] = canonical.warnings
    assert "left out 3 keys" in warning
    assert "RENDER_API_TOKEN" in warning
    assert "VAULT_TOKEN" in warning
    assert OWNERSHIP_KEY in warning
    assert CANARY not in warning


def test_reserved_names_dropped_whatever_the_filters() -> None:
    settings = {"ENVSYNC_INCLUDE_PREFIXES": "", "ENVSYNC_EXCLUDE_PREFIXES": ""}
    environ = {"ENVSYNC_API_TOKEN": CANARY, "ENVSYNC_DATABASE_URL": CANARY}

    canonical = load(settings, source="env", environ=environ)

    assert dict(canonical.values) == {}


def test_nothing_dropped_means_no_warning() -> None:
    canonical = load(source="env", environ={"BRIDGE_A": "1"})

    assert canonical.warnings == ()


# --- file ------------------------------------------------------------------------------


def test_file_source_reads_dotenv_file(tmp_path: Path) -> None:
    path = tmp_path / "canonical.env"
    path.write_text('BRIDGE_A=one\nBRIDGE_B="two words"\n')

    canonical = load({"ENVSYNC_CANONICAL_FILE": str(path)}, environ={})

    assert canonical.origin == f"file {path}"
    assert revealed(canonical) == {"BRIDGE_A": "one", "BRIDGE_B": "two words"}


def test_file_option_overrides_setting(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.env"
    chosen.write_text("BRIDGE_A=chosen\n")

    canonical = load(
        {"ENVSYNC_CANONICAL_FILE": str(tmp_path / "absent.env"), "ENVSYNC_CANONICAL_SOURCE": "env"},
        source="file",
        file=str(chosen),
        environ={},
    )

    assert revealed(canonical) == {"BRIDGE_A": "chosen"}


def test_file_interpolates_file_keys_then_environ(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("BRIDGE_HOST=db\nBRIDGE_URL=${BRIDGE_HOST}:${PORT}\n")

    canonical = load(file=str(path), environ={"PORT": "5432", "BRIDGE_HOST": "ignored"})

    assert canonical.values["BRIDGE_URL"].reveal() == "db:5432"


def test_interpolation_off_keeps_text(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("BRIDGE_URL=${UNDEFINED_NAME}\n")

    canonical = load({"ENVSYNC_INTERPOLATE": "false"}, file=str(path), environ={})

    assert canonical.values["BRIDGE_URL"].reveal() == "${UNDEFINED_NAME}"


def test_missing_file_is_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        load(file=str(tmp_path / "absent.env"), environ={})

    assert "absent.env" in str(caught.value)


def test_malformed_file_stops_without_value(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(f"BRIDGE_A='{CANARY}' junk\n")

    with pytest.raises(DotenvParseError) as caught:
        load(file=str(path), environ={})

    assert caught.value.line == 1
    assert CANARY not in str(caught.value)


def test_file_drops_reserved_names(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(f"BRIDGE_A=1\nNETLIFY_API_TOKEN={CANARY}\n")

    canonical = load(file=str(path), environ={})

    assert list(canonical.values) == ["BRIDGE_A"]
    assert "NETLIFY_API_TOKEN" in canonical.warnings[-1]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"BRIDGE_K=k\n", "k"),
        (b"BRIDGE_K=k\r\n", "k"),
        (b"BRIDGE_K=k", "k"),
        (b'BRIDGE_K="k"\n', "k"),
        (b"\xef\xbb\xbfBRIDGE_K=k\n", "k"),
    ],
    ids=["lf", "crlf", "no-line-end", "quoted", "bom"],
)
def test_stdin_file_keeps_no_trailing_newline(data: bytes, expected: str) -> None:
    canonical = load(file="-", stdin=io.BytesIO(data), environ={})

    assert canonical.origin == "file <stdin>"
    assert canonical.values["BRIDGE_K"].reveal() == expected


# --- dashboard -------------------------------------------------------------------------


def test_dashboard_source_reads_object_of_strings(server: LoopbackServer) -> None:
    server.reply(DASHBOARD_PATH, Reply(json_body={"BRIDGE_A": "1", "SR_B": ""}))

    canonical = load(dashboard_settings(server))

    assert canonical.origin == f"dashboard {server.url}/..."
    assert revealed(canonical) == {"BRIDGE_A": "1", "SR_B": ""}
    [request] = server.requests_to(DASHBOARD_PATH)
    assert request.headers["authorization"] == f"Bearer {CANARY}"


def test_dashboard_source_drops_reserved_names(server: LoopbackServer) -> None:
    body = {"BRIDGE_A": "1", "ENVSYNC_DASHBOARD_AUTH_TOKEN": CANARY}
    server.reply(DASHBOARD_PATH, Reply(json_body=body))

    canonical = load(dashboard_settings(server))

    assert list(canonical.values) == ["BRIDGE_A"]
    assert "ENVSYNC_DASHBOARD_AUTH_TOKEN" in canonical.warnings[0]


def test_dashboard_without_url_is_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"ENVSYNC_CANONICAL_SOURCE": "dashboard"})

    assert caught.value.setting == "ENVSYNC_DASHBOARD_URL"


def test_dashboard_plain_http_remote_rejected() -> None:
    settings = {
        "ENVSYNC_CANONICAL_SOURCE": "dashboard",
        "ENVSYNC_DASHBOARD_URL": "http://admin.example.com/api/envsync",
        "ENVSYNC_DASHBOARD_AUTH_TOKEN": CANARY,
    }

    with pytest.raises(ConfigError) as caught:
        load(settings)

    assert caught.value.setting == "ENVSYNC_DASHBOARD_URL"
    assert CANARY not in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(json_body=["BRIDGE_A", "1"]), "returned a JSON array"),
        (Reply(json_body="BRIDGE_A=1"), "returned a JSON string"),
        (Reply(json_body=None), "returned a JSON null"),
        (Reply(raw=b"<html>sign in</html>"), "not JSON"),
    ],
    ids=["list", "string", "null", "html"],
)
def test_dashboard_wrong_shape_is_source_error(
    server: LoopbackServer, reply: Reply, expected: str
) -> None:
    server.reply(DASHBOARD_PATH, reply)

    with pytest.raises(SourceError) as caught:
        load(dashboard_settings(server))

    assert expected in str(caught.value)
    assert f"dashboard {server.url}/..." in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [5432, True, {"nested": CANARY}, [CANARY], None],
    ids=["number", "boolean", "object", "array", "null"],
)
def test_dashboard_non_string_value_names_key_not_value(
    server: LoopbackServer, value: object
) -> None:
    server.reply(DASHBOARD_PATH, Reply(json_body={"BRIDGE_OK": "x", "BRIDGE_BAD": value}))

    with pytest.raises(SourceError) as caught:
        load(dashboard_settings(server))

    assert "BRIDGE_BAD" in str(caught.value)
    assert "not a string" in str(caught.value)
    assert CANARY not in str(caught.value)
    assert "5432" not in str(caught.value)


def test_dashboard_unauthorized_names_token_setting(server: LoopbackServer) -> None:
    server.reply(DASHBOARD_PATH, Reply(401, json_body={"error": f"invalid {CANARY}"}))

    with pytest.raises(SourceFetchError) as caught:
        load(dashboard_settings(server))

    assert caught.value.status == 401
    assert "ENVSYNC_DASHBOARD_AUTH_TOKEN" in str(caught.value)
    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value)


def test_dashboard_server_error_is_retried(server: LoopbackServer) -> None:
    server.reply(DASHBOARD_PATH, Reply(502), Reply(json_body={"BRIDGE_A": "1"}))

    canonical = load(dashboard_settings(server))

    assert revealed(canonical) == {"BRIDGE_A": "1"}


def test_dashboard_timeout_is_source_error(server: LoopbackServer) -> None:
    server.reply(DASHBOARD_PATH, Reply(json_body={}, delay_s=1.0))
    settings = dashboard_settings(server, ENVSYNC_HTTP_TIMEOUT_S="0.1", ENVSYNC_MAX_RETRIES="1")

    with pytest.raises(SourceFetchError) as caught:
        load(settings)

    assert "timed out" in caught.value.reason


def test_dashboard_redirect_to_other_origin_is_not_followed(
    server: LoopbackServer, other_origin: LoopbackServer
) -> None:
    target = f"{other_origin.url}{DASHBOARD_PATH}"
    server.reply(DASHBOARD_PATH, Reply(302, headers={"Location": target}))
    other_origin.reply(DASHBOARD_PATH, Reply(json_body={"BRIDGE_A": "1"}))

    with pytest.raises(SourceFetchError) as caught:
        load(dashboard_settings(server))

    assert "302" in str(caught.value)
    assert other_origin.origin in str(caught.value)
    assert other_origin.received == []


# --- bridge-style vault ----------------------------------------------------------------


def test_bridge_vault_reads_secrets(server: LoopbackServer) -> None:
    server.reply(BRIDGE_PATH, Reply(json_body={"BRIDGE_A": "1", "SR_B": "two"}))

    canonical = load(bridge_settings(server))

    assert canonical.origin == f"vault {server.url}{BRIDGE_PATH}"
    assert revealed(canonical) == {"BRIDGE_A": "1", "SR_B": "two"}
    [request] = server.requests_to(BRIDGE_PATH)
    assert request.headers["authorization"] == f"Bearer {CANARY}"


def test_bridge_vault_leaves_out_token_fields(server: LoopbackServer) -> None:
    body = {"BRIDGE_A": "1", "RENDER_API_TOKEN": CANARY, "BRIDGE_DEPLOY_TOKEN": CANARY}
    server.reply(BRIDGE_PATH, Reply(json_body=body))
    settings = bridge_settings(
        server, ENVSYNC_VAULT_TOKEN_KEYS="BRIDGE_DEPLOY_TOKEN,NETLIFY_API_TOKEN"
    )

    canonical = load(settings)

    assert list(canonical.values) == ["BRIDGE_A"]
    assert any("BRIDGE_DEPLOY_TOKEN" in warning for warning in canonical.warnings)
    assert any("RENDER_API_TOKEN" in warning for warning in canonical.warnings)
    assert all(CANARY not in warning for warning in canonical.warnings)


def test_bridge_vault_non_string_is_source_error(server: LoopbackServer) -> None:
    server.reply(BRIDGE_PATH, Reply(json_body={"BRIDGE_PORT": 5432}))

    with pytest.raises(SourceError) as caught:
        load(bridge_settings(server))

    assert "BRIDGE_PORT" in str(caught.value)


def test_bridge_vault_not_found_is_source_error(server: LoopbackServer) -> None:
    server.reply(BRIDGE_PATH, Reply(404))

    with pytest.raises(SourceFetchError) as caught:
        load(bridge_settings(server))

    assert caught.value.status == 404


def test_vault_source_without_vault_is_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"ENVSYNC_CANONICAL_SOURCE": "vault"})

    assert caught.value.setting == "VAULT_ADDR"
    assert "ENVSYNC_VAULT_URL" in str(caught.value)


def test_vault_kind_bridge_without_url_is_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"ENVSYNC_CANONICAL_SOURCE": "vault", "ENVSYNC_VAULT_KIND": "bridge"})

    assert caught.value.setting == "ENVSYNC_VAULT_URL"


# --- secrets stay out of errors and logs -----------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(401, json_body={"token": CANARY}),
        Reply(500, json_body={"token": CANARY}),
        Reply(json_body={"BRIDGE_A": {"secret": CANARY}}),
        Reply(json_body=[CANARY]),
        Reply(raw=f"oops {CANARY}".encode()),
        Reply(307, headers={"Location": f"http://127.0.0.1:9/x?token={CANARY}"}),
    ],
    ids=["401", "500", "non-string", "list", "not-json", "redirect"],
)
def test_failures_never_show_token_or_values(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture, reply: Reply
) -> None:
    caplog.set_level(logging.DEBUG)
    server.reply(DASHBOARD_PATH, reply)

    with pytest.raises(SourceError) as caught:
        load(dashboard_settings(server))

    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value)
    assert CANARY not in caught.value.hint
    # httpcore's DEBUG trace repeats response headers verbatim, such as the Location
    # scripted here; what envsync and httpx log must not contain the canary.
    for record in caplog.records:
        if not record.name.startswith("httpcore"):
            assert CANARY not in record.getMessage()


def test_bearer_token_never_logged_at_debug(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.reply(DASHBOARD_PATH, Reply(500), Reply(json_body={"BRIDGE_A": "1"}))

    load(dashboard_settings(server))

    assert caplog.records
    assert CANARY not in caplog.text


def test_canonical_set_repr_masks_values(server: LoopbackServer) -> None:
    server.reply(DASHBOARD_PATH, Reply(json_body={"BRIDGE_A": CANARY}))

    canonical = load(dashboard_settings(server))

    assert canonical.values["BRIDGE_A"] == SecretValue(CANARY)
    assert CANARY not in repr(canonical)
