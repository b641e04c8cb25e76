"""What the CLI's start-up loads: the figures in docs/BENCHMARKS.md depend on heavy
libraries staying off the path of `envsync --version` and of a plan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from envsync.emulators import EmulatorSet
from envsync.store.database import SCHEMA_HEAD, _head_revision
from tests.conftest import subprocess_env

# Prints the top-level packages loaded by the time the command exits.
LOADED_AT_EXIT = """
import atexit, sys
atexit.register(lambda: print("LOADED", " ".join(sorted({m.split(".")[0] for m in sys.modules}))))
from envsync.cli import main
main()
"""


def loaded_packages(args: list[str], cwd: Path, env: dict[str, str]) -> set[str]:
    finished = subprocess.run(
        [sys.executable, "-c", LOADED_AT_EXIT, *args],
        cwd=cwd,
        env=subprocess_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(row for row in finished.stdout.splitlines() if row.startswith("LOADED "))
    return set(line.split()[1:])


def test_schema_head_is_the_newest_migration() -> None:
    assert _head_revision() == SCHEMA_HEAD


def test_version_loads_no_library(tmp_path: Path) -> None:
    loaded = loaded_packages(["--version"], tmp_path, {})

    assert loaded & {"httpx", "pydantic", "sqlalchemy", "typer", "rich"} == set()


def test_plan_leaves_migrations_vault_and_postgresql_unloaded(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    (tmp_path / "canonical.env").write_text("BRIDGE_A=1\n", encoding="utf-8")
    env = {
        "RENDER_API_URL": emulators.render_url,
        "RENDER_API_TOKEN": emulators.render_token,
        "RENDER_SERVICE_ID": "srv-d0emu0api00000000000",
        "ENVSYNC_TARGETS": "render",
        "ENVSYNC_CANONICAL_FILE": str(tmp_path / "canonical.env"),
        "ENVSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "ENVSYNC_SECRET_DIRS": str(tmp_path / "secrets"),
    }
    # The first plan creates the store's schema; the second finds it current.
    loaded_packages(["plan"], tmp_path, env)
    loaded = loaded_packages(["plan"], tmp_path, env)

    assert "httpx" in loaded
    assert loaded & {"alembic", "mako", "psycopg", "requests", "hvac", "pygments"} == set()
