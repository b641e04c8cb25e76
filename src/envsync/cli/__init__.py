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

    # httpx imports its own command-line client when Rich and Click are installed, and that
    # client loads Pygments and most of Rich, about 40 ms of every command's start-up.
    # envsync never runs it, so it is marked absent: a None entry in sys.modules makes the
    # import fail, and httpx then defines a stub in its place.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

    from envsync.cli.app import run

    run()
