"""The token discovery chain: order, stop at the first hit, each step's misses and the
not-found message. Vault and dashboard steps run against real loopback servers."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from envsync.discovery import (
    DISCOVERY_STEPS,
    Discovery,
    discover_token,
    discover_tokens,
    require_token,
)
from envsync.errors import ConfigError, DiscoveryError
from tests.sources.loopback import LoopbackServer, Reply, make_settings

CANARY = "rnd_canaryToken8f41c2"
TOKEN_PATH = "/api/tokens/envsync"
BRIDGE_PATH = "/bridge/vault/secret"


def discover(
    provider: str = "render", environ: dict[str, str] | None = None, **values: str
) -> Discovery:
    settings = make_settings(**values)
    return asyncio.run(discover_token(settings, provider, environ=environ or {}))


def secret_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Two directories standing in for /etc/secrets and ./secrets."""
    first, second = tmp_path / "etc-secrets", tmp_path / "local-secrets"
    first.mkdir()
    second.mkdir()
    return first, second


def dirs_setting(*directories: Path) -> str:
    return ",".join(str(directory) for directory in directories)


def test_registry_names_every_step() -> None:
    assert sorted(DISCOVERY_STEPS) == ["dashboard", "env", "secret_files", "vault"]


# --- env -------------------------------------------------------------------------------


def test_env_variable_is_found() -> None:
    found = discover(environ={"RENDER_API_TOKEN": CANARY})

    assert found.token is not None
    assert found.token.reveal() == CANARY
    assert found.source == "env RENDER_API_TOKEN"
    assert found.attempts == ()
    assert found.warnings == ()


def test_env_uses_provider_variable() -> None:
    found = discover("netlify", environ={"RENDER_API_TOKEN": "r", "NETLIFY_API_TOKEN": "n"})

    assert found.token is not None
    assert found.token.reveal() == "n"
    assert found.source == "env NETLIFY_API_TOKEN"


@pytest.mark.parametrize(
    ("environ", "reason"),
    [({}, "not set"), ({"RENDER_API_TOKEN": ""}, "empty"), ({"RENDER_API_TOKEN": " \n"}, "empty")],
    ids=["unset", "empty", "blank"],
)
def test_env_miss_reasons(environ: dict[str, str], reason: str) -> None:
    found = discover(environ=environ, ENVSYNC_DISCOVERY_ORDER="env")

    assert found.token is None
    assert found.attempts == (("env RENDER_API_TOKEN", reason),)


def test_env_token_with_newline_is_trimmed_with_warning() -> None:
    found = discover(environ={"RENDER_API_TOKEN": f"{CANARY}\n"})

    assert found.token is not None
    assert found.token.reveal() == CANARY
    assert found.warnings == ("env RENDER_API_TOKEN: trimmed a line ending around the token",)


# --- order -----------------------------------------------------------------------------


def test_chain_stops_at_first_hit(tmp_path: Path, server: LoopbackServer) -> None:
    first, _ = secret_dirs(tmp_path)
    (first / "render.token").write_text("from-file")
    server.reply(TOKEN_PATH, Reply(json_body={"value": "from-dashboard"}))

    found = discover(
        environ={"RENDER_API_TOKEN": "from-env"},
        ENVSYNC_SECRET_DIRS=dirs_setting(first),
        ENVSYNC_DASHBOARD_TOKEN_URLS=f"{server.url}{TOKEN_PATH}",
    )

    assert found.source == "env RENDER_API_TOKEN"
    assert server.received == []


def test_discovery_order_setting_is_followed(tmp_path: Path, server: LoopbackServer) -> None:
    first, _ = secret_dirs(tmp_path)
    (first / "render.token").write_text("from-file")
    server.reply(TOKEN_PATH, Reply(json_body={"value": "from-dashboard"}))

    found = discover(
        environ={"RENDER_API_TOKEN": "from-env"},
        ENVSYNC_DISCOVERY_ORDER="dashboard,secret_files,env",
        ENVSYNC_SECRET_DIRS=dirs_setting(first),
        ENVSYNC_DASHBOARD_TOKEN_URLS=f"{server.url}{TOKEN_PATH}",
    )

    assert found.token is not None
    assert found.token.reveal() == "from-dashboard"
    assert found.source == f"dashboard {server.url}/..."


def test_later_step_hit_lists_earlier_misses(tmp_path: Path) -> None:
    first, second = secret_dirs(tmp_path)
    (second / "render.token").write_text("from-second")

    found = discover(ENVSYNC_SECRET_DIRS=dirs_setting(first, second))

    assert found.source == f"secret_files {second}/render.token"
    assert found.attempts == (
        ("env RENDER_API_TOKEN", "not set"),
        (f"secret_files {first}/render.token", "not found"),
    )


def test_step_left_out_of_order_is_skipped() -> None:
    found = discover(environ={"RENDER_API_TOKEN": CANARY}, ENVSYNC_DISCOVERY_ORDER="dashboard")

    assert found.token is None
    assert found.attempts == (("dashboard", "no URL in ENVSYNC_DASHBOARD_TOKEN_URLS"),)


# --- secret files ----------------------------------------------------------------------


def test_first_secret_dir_wins(tmp_path: Path) -> None:
    first, second = secret_dirs(tmp_path)
    (first / "render.token").write_text("from-etc")
    (second / "render.token").write_text("from-local")

    found = discover(ENVSYNC_SECRET_DIRS=dirs_setting(first, second))

    assert found.token is not None
    assert found.token.reveal() == "from-etc"
    assert found.source == f"secret_files {first}/render.token"


def test_relative_secret_dir_uses_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = secret_dirs(tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "netlify.token").write_text("nfp_local")
    monkeypatch.chdir(tmp_path)

    found = discover("netlify", ENVSYNC_SECRET_DIRS=f"{first},./secrets")

    assert found.token is not None
    assert found.token.reveal() == "nfp_local"
    assert found.source == "secret_files ./secrets/netlify.token"


def test_filename_is_chosen_by_provider_prefix(tmp_path: Path) -> None:
    first, _ = secret_dirs(tmp_path)
    (first / "render.txt").write_text("from-txt")
    (first / "netlify.token").write_text("not-render")

    found = discover(
        ENVSYNC_SECRET_DIRS=dirs_setting(first),
        ENVSYNC_SECRET_FILENAMES="netlify.token,render.txt",
    )

    assert found.source == f"secret_files {first}/render.txt"


def test_no_filename_for_provider_is_a_miss(tmp_path: Path) -> None:
    found = discover(
        ENVSYNC_DISCOVERY_ORDER="secret_files",
        ENVSYNC_SECRET_DIRS=str(tmp_path),
        ENVSYNC_SECRET_FILENAMES="netlify.token",
    )

    assert found.attempts == (
        ("secret_files", "ENVSYNC_SECRET_FILENAMES names no file for render"),
    )


@pytest.mark.parametrize(
    ("content", "trimmed"),
    [
        (b"tok\n", "a line ending"),
        (b"tok\r\n", "a CRLF line ending"),
        (b"tok\r", "a line ending"),
        (b"\xef\xbb\xbftok", "a byte-order mark"),
        (b"\xef\xbb\xbftok\r\n", "a byte-order mark and a CRLF line ending"),
        (b"  tok \n", "leading whitespace and a line ending and trailing whitespace"),
        (b"\ttok", "leading whitespace"),
    ],
    ids=["lf", "crlf", "cr", "bom", "bom-crlf", "spaces", "tab"],
)
def test_token_file_is_trimmed_with_warning(tmp_path: Path, content: bytes, trimmed: str) -> None:
    (tmp_path / "render.token").write_bytes(content)

    found = discover(ENVSYNC_SECRET_DIRS=str(tmp_path))

    assert found.token is not None
    assert found.token.reveal() == "tok"
    expected = f"secret_files {tmp_path}/render.token: trimmed {trimmed} around the token"
    assert found.warnings == (expected,)


def test_clean_token_file_gives_no_warning(tmp_path: Path) -> None:
    (tmp_path / "render.token").write_bytes(b"tok")

    found = discover(ENVSYNC_SECRET_DIRS=str(tmp_path))

    assert found.warnings == ()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b" \r\n\t", "empty"),
        (b"\xef\xbb\xbf\n", "empty"),
        (b"tok\xffen", "is not UTF-8 text"),
        ("tok".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
        (b"tok\nsecond line", "contains whitespace or a control character inside the token"),
        (b"to\x00k", "contains whitespace or a control character inside the token"),
    ],
    ids=["empty", "blank", "bom-only", "not-utf8", "utf16", "two-lines", "nul"],
)
def test_unusable_token_file_is_named_with_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    (tmp_path / "render.token").write_bytes(content)

    found = discover(ENVSYNC_DISCOVERY_ORDER="secret_files", ENVSYNC_SECRET_DIRS=str(tmp_path))

    assert found.token is None
    assert found.attempts == ((f"secret_files {tmp_path}/render.token", reason),)


def test_directory_in_place_of_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "render.token").mkdir()

    found = discover(ENVSYNC_DISCOVERY_ORDER="secret_files", ENVSYNC_SECRET_DIRS=str(tmp_path))

    assert found.attempts == (
        (f"secret_files {tmp_path}/render.token", "is a directory, not a file"),
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "render.token"
    path.write_text("tok")
    path.chmod(0)

    found = discover(ENVSYNC_DISCOVERY_ORDER="secret_files", ENVSYNC_SECRET_DIRS=str(tmp_path))

    assert found.attempts == (
        (f"secret_files {path}", "exists but cannot be read: permission denied"),
    )


def test_permission_error_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Stands in for a mode-000 file when the suite runs as root, which could read it.
    path = tmp_path / "render.token"
    path.write_text("tok")
    original = Path.read_bytes

    def refuse_token_file(self: Path) -> bytes:
        if self == path:
            raise PermissionError(13, "Permission denied")
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", refuse_token_file)

    found = discover(ENVSYNC_DISCOVERY_ORDER="secret_files", ENVSYNC_SECRET_DIRS=str(tmp_path))

    assert found.attempts == (
        (f"secret_files {path}", "exists but cannot be read: permission denied"),
    )


def test_unreadable_first_file_falls_through_to_next(tmp_path: Path) -> None:
    first, second = secret_dirs(tmp_path)
    (first / "render.token").write_bytes(b"\xc3\x28tok")
    (second / "render.token").write_text("good")

    found = discover(ENVSYNC_SECRET_DIRS=dirs_setting(first, second))

    assert found.token is not None
    assert found.token.reveal() == "good"
    assert (f"secret_files {first}/render.token", "is not UTF-8 text") in found.attempts


# --- bridge-style vault ----------------------------------------------------------------


def bridge(server: LoopbackServer, **extra: str) -> dict[str, str]:
    return {
        "ENVSYNC_VAULT_URL": server.url,
        "ENVSYNC_VAULT_AUTH_TOKEN": "vault-auth-canary",
        "ENVSYNC_DISCOVERY_ORDER": "vault",
        **extra,
    }


def test_bridge_vault_token_is_found(server: LoopbackServer) -> None:
    server.reply(BRIDGE_PATH, Reply(json_body={"key": "RENDER_API_TOKEN", "value": CANARY}))

    found = discover(**bridge(server))

    assert found.token is not None
    assert found.token.reveal() == CANARY
    assert found.source == f"vault {server.url}{BRIDGE_PATH} key RENDER_API_TOKEN"
    [request] = server.requests_to(BRIDGE_PATH)
    assert request.query == "key=RENDER_API_TOKEN"
    assert request.headers["authorization"] == "Bearer vault-auth-canary"


def test_bridge_vault_bare_value_is_accepted(server: LoopbackServer) -> None:
    server.reply(BRIDGE_PATH, Reply(json_body={"value": "nfp_bare"}))

    found = discover("netlify", **bridge(server))

    assert found.token is not None
    assert found.token.reveal() == "nfp_bare"
    assert server.requests_to(BRIDGE_PATH)[0].query == "key=NETLIFY_API_TOKEN"


def test_bridge_vault_uses_configured_token_key(server: LoopbackServer) -> None:
    server.reply(BRIDGE_PATH, Reply(json_body={"value": "tok"}))

    found = discover(**bridge(server, ENVSYNC_VAULT_TOKEN_KEYS="RENDER_KEY,NETLIFY_KEY"))

    assert found.source == f"vault {server.url}{BRIDGE_PATH} key RENDER_KEY"
    assert server.requests_to(BRIDGE_PATH)[0].query == "key=RENDER_KEY"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(404, json_body={"error": "no such key"}), "not found (HTTP 404)"),
        (Reply(json_body={"key": "OTHER", "value": "x"}), "the response is for another key"),
        (Reply(json_body={"key": "RENDER_API_TOKEN"}), "the response has no value"),
        (Reply(json_body={"value": 5}), "the value in the response is not a string"),
        (Reply(json_body={"value": ""}), "empty"),
        (Reply(json_body=["tok"]), "the response is not a JSON object"),
        (Reply(500), "HTTP 500 after 3 attempts"),
        (Reply(403), "HTTP 403: the bearer token was rejected or lacks permission"),
    ],
    ids=["404", "other-key", "no-value", "number", "empty", "list", "500", "403"],
)
def test_bridge_vault_miss_reasons(server: LoopbackServer, reply: Reply, reason: str) -> None:
    server.reply(BRIDGE_PATH, reply)

    found = discover(**bridge(server))

    assert found.token is None
    assert found.attempts == ((f"vault {server.url}{BRIDGE_PATH} key RENDER_API_TOKEN", reason),)


def test_vault_not_configured_is_a_miss() -> None:
    found = discover(ENVSYNC_DISCOVERY_ORDER="vault")

    assert found.attempts == (
        ("vault", "not configured: neither VAULT_ADDR nor ENVSYNC_VAULT_URL is set"),
    )


def test_bridge_vault_failure_goes_on_to_dashboard(server: LoopbackServer) -> None:
    server.reply(BRIDGE_PATH, Reply(404))
    server.reply(TOKEN_PATH, Reply(json_body={"key": "RENDER_API_TOKEN", "value": "dash"}))

    found = discover(
        **bridge(server, ENVSYNC_DISCOVERY_ORDER="vault,dashboard"),
        ENVSYNC_DASHBOARD_TOKEN_URLS=f"{server.url}{TOKEN_PATH}",
    )

    assert found.token is not None
    assert found.token.reveal() == "dash"
    assert len(found.attempts) == 1


# --- dashboard -------------------------------------------------------------------------


def dashboard(*urls: str, **extra: str) -> dict[str, str]:
    return {
        "ENVSYNC_DASHBOARD_TOKEN_URLS": ",".join(urls),
        "ENVSYNC_DASHBOARD_AUTH_TOKEN": "dashboard-auth-canary",
        "ENVSYNC_DISCOVERY_ORDER": "dashboard",
        **extra,
    }


def test_dashboard_token_is_found(server: LoopbackServer) -> None:
    server.reply(TOKEN_PATH, Reply(json_body={"key": "RENDER_API_TOKEN", "value": CANARY}))

    found = discover(**dashboard(f"{server.url}{TOKEN_PATH}"))

    assert found.token is not None
    assert found.token.reveal() == CANARY
    assert found.source == f"dashboard {server.url}/..."
    [request] = server.requests_to(TOKEN_PATH)
    assert request.query == "key=RENDER_API_TOKEN"
    assert request.headers["authorization"] == "Bearer dashboard-auth-canary"


def test_dashboard_urls_are_tried_in_order(server: LoopbackServer) -> None:
    server.reply("/first", Reply(404))
    server.reply("/second", Reply(json_body={"value": "tok"}))

    found = discover(**dashboard(f"{server.url}/first", f"{server.url}/second"))

    assert found.source == f"dashboard #2 {server.url}/..."
    assert found.attempts == ((f"dashboard #1 {server.url}/...", "not found (HTTP 404)"),)


def test_dashboard_source_has_no_query_string(server: LoopbackServer) -> None:
    server.reply(TOKEN_PATH, Reply(json_body={"value": "tok"}))

    found = discover(**dashboard(f"{server.url}{TOKEN_PATH}?team=ops"))

    assert found.source == f"dashboard {server.url}/..."
    assert server.requests_to(TOKEN_PATH)[0].query == "team=ops&key=RENDER_API_TOKEN"


def test_dashboard_over_plain_http_is_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        discover(**dashboard("http://admin.example.com/api/tokens/envsync"))

    assert caught.value.setting == "ENVSYNC_DASHBOARD_TOKEN_URLS"


def test_dashboard_redirect_is_a_miss_without_leak(
    server: LoopbackServer, other_origin: LoopbackServer
) -> None:
    server.reply(TOKEN_PATH, Reply(307, headers={"Location": f"{other_origin.url}{TOKEN_PATH}"}))
    other_origin.reply(TOKEN_PATH, Reply(json_body={"value": "stolen"}))

    found = discover(**dashboard(f"{server.url}{TOKEN_PATH}"))

    assert found.token is None
    [(_where, reason)] = found.attempts
    assert "307" in reason
    assert other_origin.origin in reason
    assert other_origin.received == []


# --- not found -------------------------------------------------------------------------


def test_not_found_message_lists_every_step(tmp_path: Path, server: LoopbackServer) -> None:
    server.reply(BRIDGE_PATH, Reply(404))
    server.reply(TOKEN_PATH, Reply(401))
    found = discover(
        ENVSYNC_DISCOVERY_ORDER="env,secret_files,vault,dashboard",
        ENVSYNC_SECRET_DIRS=str(tmp_path),
        ENVSYNC_VAULT_URL=server.url,
        ENVSYNC_DASHBOARD_TOKEN_URLS=f"{server.url}{TOKEN_PATH}",
    )

    with pytest.raises(DiscoveryError) as caught:
        require_token(found)

    message = str(caught.value)
    assert message.startswith("Render API token not found via discovery chain")
    assert "env RENDER_API_TOKEN: not set" in message
    assert f"secret_files {tmp_path}/render.token: not found" in message
    assert f"vault {server.url}{BRIDGE_PATH} key RENDER_API_TOKEN: not found (HTTP 404)" in message
    assert f"dashboard {server.url}/...: HTTP 401" in message
    assert caught.value.attempts == list(found.attempts)


def test_not_found_hint_names_where_to_put_token(tmp_path: Path) -> None:
    found = discover(ENVSYNC_SECRET_DIRS=f"{tmp_path},./secrets")

    with pytest.raises(DiscoveryError) as caught:
        require_token(found)

    assert caught.value.hint == (
        f"set RENDER_API_TOKEN in envsync's environment, or write it to {tmp_path}/render.token"
    )


def test_netlify_not_found_wording() -> None:
    found = discover("netlify", ENVSYNC_DISCOVERY_ORDER="env")

    with pytest.raises(DiscoveryError) as caught:
        require_token(found)

    assert str(caught.value).startswith("Netlify API token not found via discovery chain")
    assert "NETLIFY_API_TOKEN" in caught.value.hint


def test_require_token_returns_found_token() -> None:
    found = discover(environ={"RENDER_API_TOKEN": CANARY})

    assert require_token(found).reveal() == CANARY


def test_unknown_provider_is_config_error() -> None:
    with pytest.raises(ConfigError):
        discover("heroku")


def test_discover_tokens_covers_each_provider(tmp_path: Path) -> None:
    (tmp_path / "netlify.token").write_text("nfp_file")
    settings = make_settings(ENVSYNC_SECRET_DIRS=str(tmp_path))

    found = asyncio.run(
        discover_tokens(settings, ["render", "netlify"], environ={"RENDER_API_TOKEN": "rnd_env"})
    )

    assert list(found) == ["render", "netlify"]
    assert found["render"].source == "env RENDER_API_TOKEN"
    assert found["netlify"].source == f"secret_files {tmp_path}/netlify.token"


# --- secrets stay out of errors, reprs and logs ----------------------------------------


def test_discovery_repr_masks_token() -> None:
    found = discover(environ={"RENDER_API_TOKEN": CANARY})

    assert CANARY not in repr(found)
    assert CANARY not in str(found)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(401, json_body={"detail": f"bad {CANARY}"}),
        Reply(500, json_body={"detail": CANARY}),
        Reply(json_body={"key": "OTHER", "value": CANARY}),
        Reply(json_body={"value": f"{CANARY}\nsecond"}),
        Reply(raw=f"<p>{CANARY}</p>".encode()),
    ],
    ids=["401", "500", "other-key", "two-lines", "not-json"],
)
def test_failed_lookups_never_show_tokens(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture, reply: Reply
) -> None:
    caplog.set_level(logging.DEBUG)
    server.reply(TOKEN_PATH, reply)
    found = discover(**dashboard(f"{server.url}{TOKEN_PATH}", ENVSYNC_DASHBOARD_AUTH_TOKEN=CANARY))

    with pytest.raises(DiscoveryError) as caught:
        require_token(found)

    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value)
    assert "key=" not in str(caught.value)
    assert CANARY not in repr(found)
    assert CANARY not in caplog.text


def test_timeout_reason_has_no_query_or_token(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.reply(TOKEN_PATH, Reply(json_body={"value": "late"}, delay_s=1.0))
    settings = dashboard(
        f"{server.url}{TOKEN_PATH}",
        ENVSYNC_DASHBOARD_AUTH_TOKEN=CANARY,
        ENVSYNC_HTTP_TIMEOUT_S="0.1",
        ENVSYNC_MAX_RETRIES="1",
    )

    found = discover(**settings)

    assert found.attempts == (
        (f"dashboard {server.url}/...", "the request timed out after 2 attempts"),
    )
    with pytest.raises(DiscoveryError) as caught:
        require_token(found)
    assert "?" not in str(caught.value)
    assert CANARY not in caplog.text
