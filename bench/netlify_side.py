"""envsync beside netlify-cli on the same emulated Netlify site. Runs only inside
`isolated-run` (a network namespace with nothing but loopback), with the emulators started
in the same namespace:

    ../shared/tools/isolated-run -- .venv/bin/python -m bench.netlify_side OUT.json

It measures `netlify --version` and `netlify env:list --json`, then imports one .env file
both ways, `netlify env:import FILE` and `envsync apply --file FILE --yes`, from the same
starting state, without and with drift: requests, wall time, and what survived.

The starting site has 20 plain keys with a `production` and a `deploy-preview` value, a
key whose value contains `#`, and a secret in `production` and `deploy-preview`. envsync
manages the `production` context (NETLIFY_CONTEXT=production and
NETLIFY_SECRET_KEYS=APP_SECRET); netlify-cli's env:import has no context option and writes
every key it imports to all contexts.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.commands import CommandFigures, measure
from bench.emulated import EmulatorProcess
from bench.footprint import command_env, envsync_command, prepare_bytecode
from bench.sandbox import LEDGER_KEY
from bench.seeds import (
    ACCOUNT_ID,
    ACCOUNT_SLUG,
    ALL_SCOPES,
    NETLIFY_TOKEN,
    RENDER_TOKEN,
    Fleet,
    render_part,
    site_id,
)

PLAIN_KEYS = [f"APP_K{index:02d}" for index in range(20)]
HASH_KEY = "APP_HASH"
SECRET_KEY = "APP_SECRET"
SECRET_VALUE = "s3cret-value-0123"
DRIFTED = PLAIN_KEYS[:4]


def netlify_cli() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "envsync" / "netlify-cli" / "node_modules" / ".bin" / "netlify"


def starting_seed() -> dict[str, Any]:
    env = [_plain(key, f"p-{key}", f"dp-{key}") for key in PLAIN_KEYS]
    env.append(_plain(HASH_KEY, "abc#def", "dp-hash"))
    env.append(
        {
            "key": SECRET_KEY,
            "scopes": ["builds", "functions", "runtime"],
            "is_secret": True,
            "values": [
                {"context": context, "value": SECRET_VALUE}
                for context in ("production", "deploy-preview")
            ],
        }
    )
    site = {
        "id": site_id(0),
        "name": "bench-0",
        "account_id": ACCOUNT_ID,
        "account_slug": ACCOUNT_SLUG,
        "env": env,
    }
    netlify = {
        "tokens": [NETLIFY_TOKEN],
        "accounts": [{"id": ACCOUNT_ID, "slug": ACCOUNT_SLUG, "name": "Bench"}],
        "sites": [site],
    }
    return {"render": render_part(Fleet()), "netlify": netlify}


def _plain(key: str, production: str, preview: str) -> dict[str, Any]:
    return {
        "key": key,
        "scopes": ALL_SCOPES,
        "is_secret": False,
        "values": [
            {"context": "production", "value": production},
            {"context": "deploy-preview", "value": preview},
        ],
    }


def dotenv_file(drift: bool) -> str:
    """Return the .env file both tools import. In envsync's .env rules, an unquoted `#`
    with no space before it is part of the value."""
    lines = [f"{key}=p-{key}{'-new' if drift and key in DRIFTED else ''}" for key in PLAIN_KEYS]
    lines.append(f"{HASH_KEY}=abc#{'xyz' if drift else 'def'}")
    lines.append(f"{SECRET_KEY}={SECRET_VALUE}")
    return "\n".join(lines) + "\n"


def survivors(state: dict[str, Any], drift: bool) -> dict[str, Any]:
    variables = {item["key"]: item for item in state["sites"][0]["env"]}

    def value(key: str, context: str) -> str | None:
        for entry in variables.get(key, {}).get("values", []):
            if entry["context"] == context:
                return str(entry.get("value", ""))
        return None

    previews = [key for key in PLAIN_KEYS if value(key, "deploy-preview") == f"dp-{key}"]
    expected_hash = f"abc#{'xyz' if drift else 'def'}"
    return {
        "deploy-preview values kept": f"{len(previews)} of {len(PLAIN_KEYS)}",
        "value with # stored whole": value(HASH_KEY, "production") == expected_hash,
        "secret still secret": bool(variables.get(SECRET_KEY, {}).get("is_secret")),
        "secret's deploy-preview value kept": value(SECRET_KEY, "deploy-preview") is not None,
    }


def _tool_command(tool: str, file: Path) -> list[str]:
    if tool == "netlify-cli":
        return [str(netlify_cli()), "env:import", str(file)]
    return [*envsync_command(), "apply", "--file", str(file), "--yes"]


def _tool_env(tool: str, emulators: EmulatorProcess, folder: Path) -> dict[str, str]:
    if tool == "netlify-cli":
        return command_env(
            None,
            {
                "NETLIFY_API_URL": emulators.netlify_url,
                "NETLIFY_AUTH_TOKEN": NETLIFY_TOKEN,
                "NETLIFY_SITE_ID": site_id(0),
            },
        )
    return command_env(
        None,
        {
            "NETLIFY_API_URL": emulators.netlify_url,
            "NETLIFY_API_TOKEN": NETLIFY_TOKEN,
            "NETLIFY_SITE_ID": site_id(0),
            "NETLIFY_CONTEXT": "production",
            "NETLIFY_SECRET_KEYS": SECRET_KEY,
            "RENDER_API_URL": emulators.render_url,
            "RENDER_API_TOKEN": RENDER_TOKEN,
            "ENVSYNC_TARGETS": "netlify",
            "ENVSYNC_INCLUDE_PREFIXES": "",
            "ENVSYNC_EXCLUDE_PREFIXES": "",
            "ENVSYNC_DISCOVERY_ORDER": "env",
            "ENVSYNC_SECRET_DIRS": str(folder / "secrets"),
            "ENVSYNC_DATABASE_URL": f"sqlite:///{folder / 'state.db'}",
            "ENVSYNC_LEDGER_KEY": LEDGER_KEY,
        },
    )


def side_by_side(emulators: EmulatorProcess, folder: Path, runs: int) -> list[dict[str, Any]]:
    rows = []
    for drift in (False, True):
        file = folder / f"import-{'drift' if drift else 'same'}.env"
        file.write_text(dotenv_file(drift), "utf-8")
        for tool in ("netlify-cli", "envsync"):
            rows.append(_import_row(emulators, folder, tool, file, drift, runs))
    return rows


def _import_row(
    emulators: EmulatorProcess, folder: Path, tool: str, file: Path, drift: bool, runs: int
) -> dict[str, Any]:
    walls = []
    outcome: subprocess.CompletedProcess[str] | None = None
    for _ in range(runs):
        # The same starting state every run, for envsync without local state (a CI job).
        emulators.reset()
        (folder / "state.db").unlink(missing_ok=True)
        started = time.perf_counter()
        outcome = subprocess.run(
            _tool_command(tool, file),
            env=_tool_env(tool, emulators, folder),
            cwd=folder,
            capture_output=True,
            text=True,
        )
        walls.append(time.perf_counter() - started)
    assert outcome is not None
    requests = emulators.requests("netlify")
    methods = Counter(entry["method"] for entry in requests)
    state = emulators.state("netlify")
    return {
        "tool": tool,
        "drift": "4 of 22 keys changed" if drift else "none",
        "exit_code": outcome.returncode,
        "wall_s": statistics.median(walls),
        "runs": runs,
        "requests": len(requests),
        "methods": dict(sorted(methods.items())),
        "survived": survivors(state, drift),
    }


def footprint(emulators: EmulatorProcess, runs: int) -> list[CommandFigures]:
    env = _tool_env("netlify-cli", emulators, Path("."))
    cli = str(netlify_cli())
    return [
        measure("netlify --version", [cli, "--version"], env, runs=runs),
        measure("netlify env:list --json", [cli, "env:list", "--json"], env, runs=runs),
    ]


def netlify_version() -> str:
    finished = subprocess.run([str(netlify_cli()), "--version"], capture_output=True, text=True)
    return finished.stdout.strip()


def main() -> None:
    out = Path(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    prepare_bytecode()
    with (
        tempfile.TemporaryDirectory(prefix="envsync-bench-side-") as scratch,
        EmulatorProcess(starting_seed(), env=command_env(None, {})) as emulators,
    ):
        result = {
            "netlify_cli_version": netlify_version(),
            "footprint": [figures.as_dict() for figures in footprint(emulators, runs)],
            "side_by_side": side_by_side(emulators, Path(scratch), max(3, runs // 3)),
        }
    out.write_text(json.dumps(result, indent=2), "utf-8")


if __name__ == "__main__":
    main()
