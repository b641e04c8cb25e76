"""The `envsync` command.

`main` handles `envsync --version` before importing anything else, so CI jobs that only
check the version pay for nothing; every other command loads the Typer app in `app.py`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from envsync import __version__

        sys.stdout.write(f"envsync {__version__}\n")
        return

    from envsync.cli.app import run

    run()
