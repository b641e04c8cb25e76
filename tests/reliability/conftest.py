"""Fixtures of the reliability suites, and the `--reliability-report PATH` option that writes
the outcomes they recorded into docs/RELIABILITY.md (see `tests.reliability.report`)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import workspace
from tests.reliability.report import ReliabilityReport, write_report

__all__ = ["reliability_report", "workspace"]

REPORT_OPTION = "--reliability-report"
REPORT_KEY = pytest.StashKey[ReliabilityReport]()
# Each suite registers the order of its rows here, so a table reads in definition order
# whatever order the tests ran in.
ROW_ORDERS: dict[str, dict[str, int]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        REPORT_OPTION,
        metavar="PATH",
        default=None,
        help="write the reliability tables of this session into PATH (docs/RELIABILITY.md)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[REPORT_KEY] = ReliabilityReport()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption(REPORT_OPTION, default=None)
    if not path:
        return
    from pathlib import Path

    written = write_report(Path(path), session.config.stash[REPORT_KEY], ROW_ORDERS)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        tables = ", ".join(written) or "nothing"
        reporter.write_line(f"reliability report: wrote {tables} to {path}")


@pytest.fixture
def reliability_report(request: pytest.FixtureRequest) -> ReliabilityReport:
    return request.config.stash[REPORT_KEY]
