"""The CLI's footprint in a CI job: `envsync --version`, and a one-target plan with no
drift against the emulators, as wall time and peak memory.

A wheel install compiles envsync's bytecode when it is installed; an editable checkout
does not, and this machine sets PYTHONDONTWRITEBYTECODE. So the benchmark compiles the
package first and runs every command without that variable, as an installed envsync runs.
"""

from __future__ import annotations

import compileall
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import envsync
from bench.commands import CommandFigures, measure
from bench.emulated import EmulatorProcess
from bench.sandbox import Sandbox, check_report
from bench.seeds import Fleet, base_values, seed

VARIABLES = 20


def envsync_command() -> list[str]:
    """Return the installed `envsync` script beside this interpreter, as CI jobs call it."""
    script = Path(sys.executable).with_name("envsync")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from envsync.cli import main; main()"]


def prepare_bytecode() -> None:
    compileall.compile_dir(str(Path(envsync.__file__).parent), quiet=1)


def command_env(base: Mapping[str, str] | None, extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def run(*, runs: int = 15, base_env: Mapping[str, str] | None = None) -> list[CommandFigures]:
    prepare_bytecode()
    envsync_cli = envsync_command()
    figures = [
        measure(
            "envsync --version", [*envsync_cli, "--version"], command_env(base_env, {}), runs=runs
        )
    ]
    fleets = {
        "render service": Fleet(services=1, variables=base_values(VARIABLES)),
        "netlify site": Fleet(sites=1, variables=base_values(VARIABLES)),
    }
    with tempfile.TemporaryDirectory(prefix="envsync-bench-footprint-") as scratch:
        for label, fleet in fleets.items():
            figures.append(
                _plan(
                    label,
                    fleet,
                    Path(scratch) / label.replace(" ", "-"),
                    envsync_cli,
                    runs,
                    base_env,
                )
            )
    return figures


def _plan(
    label: str,
    fleet: Fleet,
    folder: Path,
    envsync_cli: list[str],
    runs: int,
    base_env: Mapping[str, str] | None,
) -> CommandFigures:
    with EmulatorProcess(seed(fleet), env=command_env(base_env, {})) as emulators:
        sandbox = Sandbox.create(folder, emulators, fleet)
        sandbox.write_canonical(base_values(VARIABLES))
        # An apply before: the store exists and the ledger owns every key, as on a CI
        # runner that keeps its state, or with the ledger on the target.
        check_report(sandbox.run("enforce"))
        env = command_env(base_env, sandbox.environ)
        return measure(
            f"envsync plan ({label}, no drift)", [*envsync_cli, "plan"], env, runs=runs, cwd=folder
        )
