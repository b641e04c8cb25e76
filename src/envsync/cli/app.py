"""The Typer application: commands, shared options and how errors become exit codes.

Exit codes: 0 success (for `plan --detailed-exitcode`: no changes pending); 2 changes
pending (`plan --detailed-exitcode` only); 1 an error in any target, a rejected key or a
conflict, an invalid setting or a usage error. Usage errors exit 1 rather than Click's 2 so
that 2 always means "changes pending" to a CI job.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, NoReturn

import typer

from envsync import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

HELP = (
    "Keep Render and Netlify environment variables equal to one canonical set.\n\n"
    "Exit codes: 0 success (with `plan --detailed-exitcode`: no changes pending); "
    "1 an error in any target (a failed call, a rejected key, a conflict) or an invalid "
    "setting; 2 changes pending (`plan --detailed-exitcode` only)."
)

app = typer.Typer(
    name="envsync",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"envsync {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Keep Render and Netlify environment variables equal to one canonical set."""


def fail(message: str, *, code: int = EXIT_ERROR) -> NoReturn:
    """Print an error on standard error and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_cli_settings(overrides: Mapping[str, Any] | None = None) -> Any:
    """Settings for a CLI command, with logging set up; an invalid setting exits 1."""
    from envsync.config import load_settings
    from envsync.errors import ConfigError
    from envsync.logs import configure_logging, register_credentials

    try:
        settings = load_settings(overrides=overrides)
    except ConfigError as error:
        fail(str(error))

    # The service logs every provider call at INFO; on a terminal that would bury the plan,
    # so the CLI shows warnings and errors unless ENVSYNC_LOG_LEVEL is set.
    level = settings.log_level if "log_level" in settings.model_fields_set else "WARNING"
    configure_logging(level, settings.log_format)
    register_credentials(settings)
    return settings


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def run() -> None:
    """Run the app, turning usage errors and envsync's own errors into exit code 1."""
    from envsync.cli import (  # noqa: F401  (commands register)
        demo,
        discover,
        emulate,
        history,
        rollback,
        rotate,
        serve,
        sync,
    )

    try:
        # Without standalone mode, Click returns the code of a typer.Exit instead of exiting.
        outcome = app(standalone_mode=False)
        sys.exit(outcome if isinstance(outcome, int) else EXIT_OK)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as error:  # Click's usage errors, raised because standalone_mode is off
        from typer._click.exceptions import ClickException

        from envsync.errors import EnvsyncError

        if isinstance(error, ClickException):
            error.show()
            sys.exit(EXIT_ERROR)
        if isinstance(error, EnvsyncError):
            # An error envsync raised on purpose (an unusable store, say) that a command did
            # not handle. Its message names what is wrong and contains no value, so a
            # traceback would add nothing for the user.
            typer.echo(f"error: {error}", err=True)
            sys.exit(EXIT_ERROR)
        raise
