"""Hostile and broken input: canonical files, settings, smuggled credentials and provider
responses. Each gives a clear error or a correct plan, never a traceback, and never a write
after a response envsync cannot use.

tests/test_dotenv_properties.py checks the .env reader's own properties over generated
input: any text gives values or a DotenvParseError naming a line, and any value
round-trips through the writer. Here the same reader gets generated files and is driven
through the CLI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from envsync import dotenv
from envsync.cli.app import run as run_cli
from envsync.config import CREDENTIAL_SETTINGS, Settings, load_settings
from envsync.engine import RunRequest
from envsync.errors import ConfigError, DotenvParseError
from envsync.model import RunMode, SecretValue, TargetResult
from tests.e2e.conftest import SITE_ID, Workspace, netlify_seed, netlify_var, writes
from tests.reliability.harness import (
    FAST_RETRIES,
    SCENARIOS,
    add_fault,
    clear_requests,
    only_result,
    run,
    start,
    wait_idle,
)

FILTERS = {"ENVSYNC_INCLUDE_PREFIXES": "BRIDGE_", **FAST_RETRIES}


def no_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" not in text


@pytest.fixture
def cli_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Iterator[typing.Callable[..., tuple[int, str]]]:
    """Run the `envsync` entry point in this process with a clean environment.

    Returns the exit code and everything printed. An exception other than the exit itself
    escapes to the test, as a traceback would end the real command.
    """
    loggers = [logging.getLogger(name) for name in ("envsync", "uvicorn", "uvicorn.error")]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]

    def invoke(*argv: str, environ: Mapping[str, str]) -> tuple[int, str]:
        for name in list(os.environ):
            if name.startswith(("RENDER_", "NETLIFY_", "VAULT_", "ENVSYNC_")):
                monkeypatch.delenv(name)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "argv", ["envsync", *argv])
        monkeypatch.chdir(tmp_path)
        with pytest.raises(SystemExit) as ended:
            run_cli()
        captured = capsys.readouterr()
        code = ended.value.code
        return (code if isinstance(code, int) else 1), captured.out + captured.err

    yield invoke
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


# Any bytes in a canonical file.


@hypothesis_settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048))
def test_any_file_reads_or_names_line(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.env"
        path.write_bytes(data)

        try:
            parsed = dotenv.read_file(path, environ={})
        except DotenvParseError as error:
            assert error.path == str(path)
            assert error.line >= 1
            return

    assert all(isinstance(value, SecretValue) for value in parsed.values.values())


# Canonical files through `envsync plan --file`.


def plan_file(workspace: Workspace, path: Path) -> Any:
    return workspace.cli("plan", "--file", str(path), "--target", "render", extra=FILTERS)


def write_lines(path: Path, lines: typing.Iterable[str]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return path


def test_huge_file_plans_its_managed_keys(workspace: Workspace) -> None:
    unmanaged = (f"APP_SETTING_{index:06d}=value-{index}\n" for index in range(100_000))
    path = write_lines(workspace.folder / "huge.env", [*unmanaged, "BRIDGE_ONE=1\n"])

    completed = plan_file(workspace, path)

    assert completed.returncode == 0, completed.stderr
    assert "BRIDGE_ONE" in completed.stdout
    assert "100000" in completed.stdout
    assert no_traceback(completed.stderr)


def test_huge_managed_file_plans_every_key(workspace: Workspace) -> None:
    lines = (f"BRIDGE_SETTING_{index:06d}=value-{index}\n" for index in range(100_000))
    path = write_lines(workspace.folder / "huge.env", lines)

    completed = workspace.cli(
        "plan", "--json", "--file", str(path), "--target", "render", extra=FILTERS
    )

    assert completed.returncode == 0, completed.stderr
    [result] = json.loads(completed.stdout)["results"]
    assert len(result["diff"]) == 100_000
    assert {entry["op"] for entry in result["diff"]} == {"create"}


def test_megabyte_line_plans_its_value(workspace: Workspace) -> None:
    path = write_lines(workspace.folder / "long.env", ["BRIDGE_BIG=" + "x" * 1_500_000 + "\n"])

    completed = workspace.cli(
        "plan", "--json", "--file", str(path), "--target", "render", extra=FILTERS
    )

    assert completed.returncode == 0, completed.stderr
    [result] = json.loads(completed.stdout)["results"]
    [entry] = result["diff"]
    assert entry["key"] == "BRIDGE_BIG"
    assert "1500000 chars" in entry["to_val"]
    assert "xxxx" not in completed.stdout


def test_utf16_file_with_bom_plans(workspace: Workspace) -> None:
    path = workspace.folder / "utf16.env"
    path.write_bytes("BRIDGE_A=é\nBRIDGE_B=2\n".encode("utf-16"))

    completed = workspace.cli(
        "plan", "--json", "--file", str(path), "--target", "render", extra=FILTERS
    )

    assert completed.returncode == 0, completed.stderr
    [result] = json.loads(completed.stdout)["results"]
    assert [entry["key"] for entry in result["diff"]] == ["BRIDGE_A", "BRIDGE_B"]


def binary(path: Path) -> str:
    path.write_bytes(bytes(range(256)) * 16)
    return "contains a NUL byte"


def utf16_without_bom(path: Path) -> str:
    path.write_bytes("BRIDGE_A=1\n".encode("utf-16-le"))
    return "contains a NUL byte"


def invalid_utf8(path: Path) -> str:
    path.write_bytes(b"BRIDGE_A=1\nBRIDGE_B=\xff\xfe\n")
    return "line 2: invalid UTF-8"


def directory(path: Path) -> str:
    path.mkdir()
    return "is a directory"


def missing(path: Path) -> str:
    return "file not found"


def unterminated_quote(path: Path) -> str:
    path.write_text('BRIDGE_A=1\nBRIDGE_B="never closed\nBRIDGE_C=3\n', encoding="utf-8")
    return "line 2"


def larger_than_any_env_file(path: Path) -> str:
    with path.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)
    return "larger than 64 MiB"


BROKEN_FILES = {
    "binary": binary,
    "utf16_without_bom": utf16_without_bom,
    "invalid_utf8": invalid_utf8,
    "directory": directory,
    "missing": missing,
    "unterminated_quote": unterminated_quote,
    "larger_than_any_env_file": larger_than_any_env_file,
}


@pytest.mark.parametrize("kind", BROKEN_FILES)
def test_broken_file_gives_clear_error(workspace: Workspace, kind: str) -> None:
    path = workspace.folder / f"{kind}.env"
    expected = BROKEN_FILES[kind](path)

    completed = plan_file(workspace, path)

    assert completed.returncode == 1
    assert completed.stderr.startswith(f"error: {path}")
    assert expected in completed.stderr
    assert no_traceback(completed.stderr)
    assert workspace.requests("render") == []


def test_device_file_gives_clear_error(workspace: Workspace) -> None:
    completed = plan_file(workspace, Path("/dev/zero"))

    assert completed.returncode == 1
    assert "larger than 64 MiB" in completed.stderr
    assert no_traceback(completed.stderr)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_unreadable_file_gives_clear_error(workspace: Workspace) -> None:
    path = write_lines(workspace.folder / "unreadable.env", ["BRIDGE_A=1\n"])
    path.chmod(0)

    completed = plan_file(workspace, path)

    assert completed.returncode == 1
    assert "permission denied" in completed.stderr
    assert no_traceback(completed.stderr)


def test_unreadable_file_error_in_process(
    workspace: Workspace,
    cli_in_process: typing.Callable[..., tuple[int, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As root the mode-000 test above cannot fail the read, so the read is refused here.
    path = write_lines(workspace.folder / "unreadable.env", ["BRIDGE_A=1\n"])
    opened = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)

    code, output = cli_in_process(
        "plan", "--file", str(path), environ={**workspace.environ, **FILTERS}
    )

    assert code == 1
    assert f"error: {path}: permission denied" in output


# Settings with invalid values.

# An invalid value for every setting that has one. Each is of the wrong type or not one of
# the accepted choices; numbers also get values out of their range below.
INVALID_SETTINGS = {
    "ENVSYNC_ENABLED": "maybe",
    "ENVSYNC_MODE": "enforced",
    "ENVSYNC_SCHEDULE": "@sometimes",
    "ENVSYNC_CANONICAL_SOURCE": "s3",
    "ENVSYNC_TARGETS": "render,heroku",
    "ENVSYNC_DISCOVERY_ORDER": "env,guess",
    "ENVSYNC_DASHBOARD_TOKEN_URLS": "tokens.example.com/render",
    "ENVSYNC_ALLOW_DELETIONS": "sometimes",
    "ENVSYNC_MAX_DELETIONS": "many",
    "ENVSYNC_INTERPOLATE": "perhaps",
    "ENVSYNC_VAULT_KIND": "consul",
    "VAULT_ADDR": "vault.example.com:8200",
    "ENVSYNC_VAULT_URL": "ftp://vault.example.com",
    "ENVSYNC_DASHBOARD_URL": "dashboard",
    "RENDER_API_URL": "api.render.com/v1",
    "RENDER_WRITE_MODE": "batch",
    "NETLIFY_API_URL": "//api.netlify.com",
    "NETLIFY_CONTEXT": "staging",
    "NETLIFY_SCOPES": "everything",
    "ENVSYNC_REDEPLOY": "later",
    "ENVSYNC_LEDGER_BACKEND": "redis",
    "ENVSYNC_WEBHOOK_URLS": "hooks.example.com/secret-webhook-path",
    "ENVSYNC_WEBHOOK_TIMEOUT_S": "soon",
    "ENVSYNC_WEBHOOK_MAX_ATTEMPTS": "lots",
    "ENVSYNC_WEBHOOK_QUEUE_SIZE": "big",
    "ENVSYNC_TIMEZONE": "Mars/Olympus_Mons",
    "ENVSYNC_SCHEDULE_JITTER_S": "a bit",
    "ENVSYNC_LOCK_TIMEOUT_S": "forever",
    "ENVSYNC_SHUTDOWN_GRACE_S": "short",
    "ENVSYNC_MAX_BODY_BYTES": "64k",
    "ENVSYNC_CORS_ORIGINS": "https://admin.example.com/path",
    "ENVSYNC_HTTP_TIMEOUT_S": "30s",
    "ENVSYNC_MAX_RETRIES": "several",
    "ENVSYNC_RETRY_BASE_S": "fast",
    "ENVSYNC_RETRY_MAX_S": "slow",
    "ENVSYNC_CONCURRENCY": "high",
    "ENVSYNC_LOG_LEVEL": "LOUD",
    "ENVSYNC_LOG_FORMAT": "xml",
}

# Values out of range, and numbers that are not finite.
OUT_OF_RANGE = [
    ("ENVSYNC_MAX_DELETIONS", "-1"),
    ("ENVSYNC_WEBHOOK_TIMEOUT_S", "0"),
    ("ENVSYNC_WEBHOOK_TIMEOUT_S", "nan"),
    ("ENVSYNC_WEBHOOK_TIMEOUT_S", "inf"),
    ("ENVSYNC_WEBHOOK_MAX_ATTEMPTS", "21"),
    ("ENVSYNC_HTTP_TIMEOUT_S", "-5"),
    ("ENVSYNC_HTTP_TIMEOUT_S", "inf"),
    ("ENVSYNC_MAX_RETRIES", "99"),
    ("ENVSYNC_RETRY_BASE_S", "nan"),
    ("ENVSYNC_RETRY_MAX_S", "inf"),
    ("ENVSYNC_LOCK_TIMEOUT_S", "inf"),
    ("ENVSYNC_SHUTDOWN_GRACE_S", "inf"),
    ("ENVSYNC_SCHEDULE_JITTER_S", "inf"),
    ("ENVSYNC_CONCURRENCY", "0"),
    ("ENVSYNC_MAX_BODY_BYTES", "0"),
    ("NETLIFY_CONTEXT", "all,production"),
    ("NETLIFY_CONTEXT", "branch:production"),
]

# Settings that accept any text: names, ids, paths, prefixes and credentials. A wrong one
# fails later, where it is used, with an error that names it (a file not found, a target
# not found). ENVSYNC_DATABASE_URL is checked when the store opens, below.
FREE_TEXT = {
    "ENVSYNC_SECRET_FILENAMES",
    "ENVSYNC_SECRET_DIRS",
    "ENVSYNC_VAULT_TOKEN_KEYS",
    "ENVSYNC_INCLUDE_PREFIXES",
    "ENVSYNC_EXCLUDE_PREFIXES",
    "ENVSYNC_CANONICAL_FILE",
    "VAULT_TOKEN",
    "VAULT_NAMESPACE",
    "ENVSYNC_VAULT_MOUNT",
    "ENVSYNC_VAULT_PATH",
    "ENVSYNC_VAULT_TOKEN_PATH",
    "ENVSYNC_VAULT_AUTH_TOKEN",
    "ENVSYNC_DASHBOARD_AUTH_TOKEN",
    "RENDER_ACCOUNT_ID",
    "RENDER_REGION",
    "RENDER_SERVICE_ID",
    "RENDER_SERVICE_NAME",
    "RENDER_ENV_GROUP_ID",
    "NETLIFY_SITE_ID",
    "NETLIFY_TEAM_ID",
    "NETLIFY_SECRET_KEYS",
    "ENVSYNC_API_TOKEN",
    "ENVSYNC_DATABASE_URL",
    "ENVSYNC_LEDGER_KEY",
    "ENVSYNC_SNAPSHOT_KEY",
    "ENVSYNC_WEBHOOK_SECRET",
    "ENVSYNC_CONFIG_FILE",
}

SETTING_CASES = [*INVALID_SETTINGS.items(), *OUT_OF_RANGE]


def setting_names() -> set[str]:
    return {str(field.validation_alias) for field in Settings.model_fields.values()}


def is_credential(name: str) -> bool:
    if name in CREDENTIAL_SETTINGS:
        return True
    field = next(f for f in Settings.model_fields.values() if f.validation_alias == name)
    return "SecretStr" in str(field.annotation)


def test_every_setting_is_classified() -> None:
    classified = set(INVALID_SETTINGS) | FREE_TEXT

    assert setting_names() - classified == set()
    assert classified - setting_names() == set()


@pytest.mark.parametrize(
    ("name", "value"), SETTING_CASES, ids=[f"{n}={v}" for n, v in SETTING_CASES]
)
def test_invalid_setting_raises_config_error(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({name: value}, cwd=tmp_path)

    assert raised.value.setting == name
    if is_credential(name):
        assert value not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value"), SETTING_CASES, ids=[f"{n}={v}" for n, v in SETTING_CASES]
)
def test_invalid_setting_fails_cli(
    cli_in_process: typing.Callable[..., tuple[int, str]], name: str, value: str
) -> None:
    code, output = cli_in_process("plan", environ={name: value})

    assert code == 1
    assert output.startswith(f"error: {name}: ")
    if is_credential(name):
        assert value not in output


SUBPROCESS_CASES = [
    ("ENVSYNC_MODE", "enforced"),
    ("ENVSYNC_MAX_DELETIONS", "many"),
    ("ENVSYNC_WEBHOOK_URLS", "hooks.example.com/secret-webhook-path"),
    ("ENVSYNC_DATABASE_URL", "not-a-database-url-secret"),
    ("ENVSYNC_DATABASE_URL", "mysql://user:secret-password@db.example.com/envsync"),
]


@pytest.mark.parametrize(("name", "value"), SUBPROCESS_CASES)
def test_invalid_setting_exits_one(workspace: Workspace, name: str, value: str) -> None:
    workspace.write_env("BRIDGE_A=1\n")

    completed = workspace.cli("plan", extra={name: value})

    assert completed.returncode == 1
    assert completed.stderr.startswith(f"error: {name}: ")
    assert no_traceback(completed.stderr)
    if is_credential(name):
        assert value not in completed.stdout + completed.stderr
    assert workspace.requests("render") == []


def test_free_text_settings_accept_text(tmp_path: Path) -> None:
    environ = {name: "any text" for name in FREE_TEXT if name != "ENVSYNC_DATABASE_URL"}

    settings = load_settings(environ, cwd=tmp_path)

    assert settings.render_account_id == "any text"


# Credentials smuggled into the canonical set.

# envsync's own credentials, each with a value its setting accepts. No run contacts the
# webhook URL, because only the service delivers webhooks.
CREDENTIALS = {
    "RENDER_API_TOKEN": "rnd_e2e_token",
    "NETLIFY_API_TOKEN": "nfp_e2e_token",
    "ENVSYNC_API_TOKEN": "envsync-api-token-0123456789",
    "ENVSYNC_LEDGER_KEY": "ledger-key-0123456789abcdef",
    "ENVSYNC_SNAPSHOT_KEY": "snapshot-key-0123456789abcdef",
    "ENVSYNC_WEBHOOK_SECRET": "webhook-secret-0123456789",
    "ENVSYNC_WEBHOOK_URLS": "http://127.0.0.1:9/hooks/secret-path",
    "VAULT_TOKEN": "hvs.vault-token-0123456789",
    "ENVSYNC_VAULT_AUTH_TOKEN": "vault-auth-token-0123456789",
    "ENVSYNC_DASHBOARD_AUTH_TOKEN": "dashboard-auth-token-0123456789",
}


def smuggle(workspace: Workspace, lines: str, **settings: str) -> TargetResult:
    workspace.write_env(lines)
    engine = workspace.engine(**{**FILTERS, **settings})
    report = asyncio.run(engine.run(RunRequest(mode=RunMode.ENFORCE, targets=("render",))))
    [result] = report.results
    return result


def rejected_keys(result: TargetResult) -> list[str]:
    assert result.plan is not None
    return [rejection.key for rejection in result.plan.rejected]


def stored_values(workspace: Workspace) -> set[str]:
    return set(workspace.render_vars().values())


@pytest.mark.parametrize("name", CREDENTIALS)
def test_interpolated_credential_is_rejected(workspace: Workspace, name: str) -> None:
    secret = CREDENTIALS[name]
    settings = {name: secret}

    result = smuggle(workspace, f"BRIDGE_LEAK=${{{name}}}\nBRIDGE_OK=1\n", **settings)

    assert rejected_keys(result) == ["BRIDGE_LEAK"]
    assert secret not in stored_values(workspace)
    assert workspace.render_vars()["BRIDGE_OK"] == "1"


def test_database_url_interpolated_is_rejected(workspace: Workspace) -> None:
    database_url = workspace.environ["ENVSYNC_DATABASE_URL"]

    result = smuggle(workspace, "BRIDGE_LEAK=${ENVSYNC_DATABASE_URL}\n")

    assert rejected_keys(result) == ["BRIDGE_LEAK"]
    assert database_url not in stored_values(workspace)


@pytest.mark.parametrize(
    "line",
    [
        "BRIDGE_LEAK=Bearer ${RENDER_API_TOKEN}",
        "BRIDGE_LEAK=https://ci.example.com/hook?token=${ENVSYNC_API_TOKEN}",
        'BRIDGE_LEAK="${NETLIFY_API_TOKEN}\n"',
    ],
)
def test_credential_inside_value_is_rejected(workspace: Workspace, line: str) -> None:
    settings = {"ENVSYNC_API_TOKEN": CREDENTIALS["ENVSYNC_API_TOKEN"]}

    result = smuggle(workspace, f"{line}\n", **settings)

    assert rejected_keys(result) == ["BRIDGE_LEAK"]
    assert "BRIDGE_LEAK" not in workspace.render_vars()


def test_copied_token_literal_is_rejected(workspace: Workspace) -> None:
    result = smuggle(workspace, "BRIDGE_COPY=rnd_e2e_token\n")

    assert rejected_keys(result) == ["BRIDGE_COPY"]


def test_token_from_secret_file_is_rejected(workspace: Workspace) -> None:
    secrets = Path(workspace.environ["ENVSYNC_SECRET_DIRS"])
    secrets.mkdir()
    (secrets / "render.token").write_text("rnd_e2e_token\n", encoding="utf-8")
    workspace.environ.pop("RENDER_API_TOKEN")

    result = smuggle(
        workspace, "BRIDGE_COPY=rnd_e2e_token\n", ENVSYNC_DISCOVERY_ORDER="env,secret_files"
    )

    assert rejected_keys(result) == ["BRIDGE_COPY"]


def test_vault_field_equal_to_token_is_rejected(workspace: Workspace) -> None:
    vault_token = "hvs.hostile-input-token"
    fields = {"BRIDGE_DEPLOY_KEY": "rnd_e2e_token", "BRIDGE_OK": "1", "RENDER_API_TOKEN": "x"}
    workspace.emulators.seed(
        {"vault": {"tokens": [vault_token], "mounts": {"secret": {"envsync": fields}}}}
    )

    result = smuggle(
        workspace,
        "",
        ENVSYNC_CANONICAL_SOURCE="vault",
        VAULT_ADDR=workspace.emulators.vault_url,
        VAULT_TOKEN=vault_token,
    )

    assert rejected_keys(result) == ["BRIDGE_DEPLOY_KEY"]
    assert workspace.render_vars() == {"BRIDGE_OK": "1"}


def test_env_source_leaves_token_out(workspace: Workspace) -> None:
    workspace.environ["BRIDGE_OK"] = "1"
    workspace.environ["BRIDGE_TOKEN_COPY"] = "rnd_e2e_token"

    result = smuggle(
        workspace, "", ENVSYNC_CANONICAL_SOURCE="env", ENVSYNC_INCLUDE_PREFIXES="BRIDGE_,RENDER_"
    )

    assert rejected_keys(result) == ["BRIDGE_TOKEN_COPY"]
    assert "RENDER_API_TOKEN" not in workspace.render_vars()
    assert "rnd_e2e_token" not in stored_values(workspace)
    assert workspace.render_vars()["BRIDGE_OK"] == "1"


def test_smuggled_token_plan_masks_it(workspace: Workspace) -> None:
    workspace.write_env("BRIDGE_LEAK=${RENDER_API_TOKEN}\n")

    completed = workspace.cli("plan", "--target", "render", extra=FILTERS)

    assert completed.returncode == 1
    assert "BRIDGE_LEAK" in completed.stdout
    assert "RENDER_API_TOKEN" in completed.stdout
    assert "rnd_e2e_token" not in completed.stdout + completed.stderr


# Provider responses envsync cannot use.

ENVELOPE = {"cursor": "c1", "envVar": {"key": "A", "value": "1"}}

# (scenario, path of the read, response body) for each broken response to a read.
BROKEN_ANSWERS: dict[str, tuple[str, str, Any]] = {
    "render-list-object": ("render-service", r"/env-vars$", {"envVar": ENVELOPE["envVar"]}),
    "render-list-null": ("render-service", r"/env-vars$", None),
    "render-list-numbers": ("render-service", r"/env-vars$", [1, 2, 3]),
    "render-list-no_cursor": ("render-service", r"/env-vars$", [{"envVar": {"key": "A"}}]),
    "render-list-cursor_number": (
        "render-service",
        r"/env-vars$",
        [{"cursor": 7, "envVar": {"key": "A", "value": "1"}}],
    ),
    "render-list-value_null": (
        "render-service",
        r"/env-vars$",
        [{"cursor": "c", "envVar": {"key": "A", "value": None}}],
    ),
    "render-list-key_missing": (
        "render-service",
        r"/env-vars$",
        [{"cursor": "c", "envVar": {"value": "1"}}],
    ),
    "render-list-duplicate_key": (
        "render-service",
        r"/env-vars$",
        [
            {"cursor": "c1", "envVar": {"key": "A", "value": "1"}},
            {"cursor": "c2", "envVar": {"key": "A", "value": "2"}},
        ],
    ),
    "render-group-list": ("render-group", r"^/v1/env-groups/[^/]+$", [ENVELOPE]),
    "render-group-no_env_vars": (
        "render-group",
        r"^/v1/env-groups/[^/]+$",
        {"id": "evg-x", "name": "shared"},
    ),
    "render-group-env_vars_null": (
        "render-group",
        r"^/v1/env-groups/[^/]+$",
        {"id": "evg-x", "name": "shared", "envVars": None},
    ),
    "render-group-value_number": (
        "render-group",
        r"^/v1/env-groups/[^/]+$",
        {"id": "evg-x", "name": "shared", "envVars": [{"key": "A", "value": 5}]},
    ),
    "netlify-site-list": ("netlify-site", r"^/api/v1/sites/[^/]+$", [{"id": SITE_ID}]),
    "netlify-site-no_id": ("netlify-site", r"^/api/v1/sites/[^/]+$", {"name": "web"}),
    "netlify-site-no_account": (
        "netlify-site",
        r"^/api/v1/sites/[^/]+$",
        {"id": SITE_ID, "name": "web", "account_id": None},
    ),
    "netlify-env-object": ("netlify-site", r"/env$", {"key": "A", "values": []}),
    "netlify-env-null": ("netlify-site", r"/env$", None),
    "netlify-env-no_key": ("netlify-site", r"/env$", [{"values": []}]),
    "netlify-env-values_null": ("netlify-site", r"/env$", [{"key": "A", "values": None}]),
    "netlify-env-value_number": (
        "netlify-site",
        r"/env$",
        [{"key": "A", "values": [{"context": "production", "value": 5}]}],
    ),
    "netlify-env-scopes_string": (
        "netlify-site",
        r"/env$",
        [{"key": "A", "scopes": "builds", "values": []}],
    ),
    "netlify-env-branch_without_name": (
        "netlify-site",
        r"/env$",
        [{"key": "A", "values": [{"context": "branch", "value": "1"}]}],
    ),
}


@pytest.mark.parametrize("case", BROKEN_ANSWERS)
def test_broken_answer_stops_before_writing(workspace: Workspace, case: str) -> None:
    scenario_name, path, body = BROKEN_ANSWERS[case]
    scenario = SCENARIOS[scenario_name]
    api = scenario.provider
    start(workspace, scenario)
    clear_requests(workspace, api)
    add_fault(
        workspace,
        api,
        {
            "match": {"method": "GET", "path": path},
            "times": 1000,
            "fault": {"status": 200, "body": body},
        },
    )

    result = only_result(run(workspace, scenario, "enforce"))

    assert not result.ok
    assert result.error_causes in (("read_failed",), ("unexpected_response",))
    assert "/sites/" in result.errors[0] or "/env" in result.errors[0]
    assert writes(wait_idle(workspace, api)) == []


def enormous_json(size: int) -> str:
    """A JSON object with one string of `size` characters where a list of variables belongs."""
    return json.dumps({"message": "x" * size})


ENORMOUS = {
    "render-list-not_json": ("render-service", r"/env-vars$", "[" + "x" * 30_000_000),
    "render-list-object": ("render-service", r"/env-vars$", enormous_json(30_000_000)),
    "netlify-env-not_json": ("netlify-site", r"/env$", "{" * 30_000_000),
    "netlify-env-object": ("netlify-site", r"/env$", enormous_json(30_000_000)),
}


@pytest.mark.parametrize("case", ENORMOUS)
def test_enormous_answer_stops_before_writing(workspace: Workspace, case: str) -> None:
    scenario_name, path, raw = ENORMOUS[case]
    scenario = SCENARIOS[scenario_name]
    api = scenario.provider
    start(workspace, scenario)
    clear_requests(workspace, api)
    workspace.emulators.add_fault(
        api,
        {
            "match": {"method": "GET", "path": path},
            "times": 1000,
            "fault": {"status": 200, "raw_body": raw},
        },
    )

    result = only_result(run(workspace, scenario, "enforce"))

    assert not result.ok
    assert result.error_causes == ("read_failed",)
    assert len(result.errors[0]) < 1000
    assert "xxxx" not in result.errors[0]
    assert writes(wait_idle(workspace, api)) == []


def test_enormous_valid_answer_plans(workspace: Workspace) -> None:
    big = [
        netlify_var(f"APP_BLOB_{index:03d}", ("production", f"{index}" + "y" * 300_000))
        for index in range(100)
    ]
    workspace.emulators.seed({"netlify": netlify_seed(big)})
    workspace.write_env("BRIDGE_A=1\n")

    completed = workspace.cli("plan", "--json", "--target", "netlify", extra=FILTERS)

    assert completed.returncode == 0, completed.stderr
    [result] = json.loads(completed.stdout)["results"]
    assert result["unmanaged"] == 100
    assert [entry["key"] for entry in result["diff"]] == ["BRIDGE_A"]
    assert "yyyy" not in completed.stdout


def test_broken_answer_cli_has_no_traceback(workspace: Workspace) -> None:
    workspace.write_env("BRIDGE_A=1\n")
    add_fault(
        workspace,
        "render",
        {
            "match": {"method": "GET", "path": r"/env-vars$"},
            "times": 1000,
            "fault": {"status": 200, "body": {"a": 1}},
        },
    )

    completed = workspace.cli("apply", "--yes", "--target", "render", extra=FILTERS)

    assert completed.returncode == 1
    assert "expected a JSON array" in completed.stdout + completed.stderr
    assert no_traceback(completed.stderr)
    assert writes(workspace.requests("render")) == []
