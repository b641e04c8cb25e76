"""Fixtures of the security suites, and the leak scans' totals in the terminal summary."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from envsync.emulators import EmulatorSet
from tests.security.harness import REPORT_LINES, SESSION_TOTALS, LeakScan
from tests.security.stage import (
    CanaryBook,
    CanaryServer,
    add_platforms,
    add_server,
    add_store,
    make_book,
    stage_environ,
    stage_seed,
)


@dataclass
class Stage:
    """One test's emulators, canary server and working folder, all holding canaries."""

    book: CanaryBook
    emulators: EmulatorSet
    server: CanaryServer
    folder: Path

    def environ(self, log_format: str = "text", **overrides: str | None) -> dict[str, str]:
        """The stage's environment; an override of None removes the setting."""
        environ = stage_environ(
            self.book, self.emulators, self.server, self.folder, log_format=log_format
        )
        for name, value in overrides.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        return environ

    def scan(self) -> LeakScan:
        return self.book.scan()

    def add_outputs(self, scan: LeakScan, environ: dict[str, str], name: str = "after") -> None:
        """Add the platforms, the canary server and the store as channels."""
        add_platforms(scan, self.book, self.emulators, name)
        add_server(scan, self.book, self.server, name)
        add_store(scan, name, environ)

    def render_values(self) -> dict[str, Any]:
        state = self.emulators.state("render")
        service = state["services"][0]
        return {item["key"]: item["value"] for item in service["envVars"]}


@pytest.fixture(scope="session")
def book() -> CanaryBook:
    return make_book()


@pytest.fixture(scope="session")
def canary_server(book: CanaryBook, emulator_set: EmulatorSet) -> Iterator[CanaryServer]:
    server = CanaryServer(book, emulator_set.vault_url).start()
    yield server
    server.stop()


@pytest.fixture
def stage(
    book: CanaryBook, emulators: EmulatorSet, canary_server: CanaryServer, tmp_path: Path
) -> Stage:
    emulators.seed(stage_seed(book))
    canary_server.reset()
    return Stage(book, emulators, canary_server, tmp_path)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SESSION_TOTALS.scans:
        terminalreporter.write_line(
            f"leak scans: {SESSION_TOTALS.scans} scans, {SESSION_TOTALS.channels} channels, "
            f"{SESSION_TOTALS.searches} searches, {SESSION_TOTALS.hits} hits"
        )
    for line in REPORT_LINES:
        terminalreporter.write_line(line)
