"""The `secret_files` step: a token file in each of ENVSYNC_SECRET_DIRS, in order.

The file for a provider is the name in ENVSYNC_SECRET_FILENAMES whose part before the
first dot is the provider (`render.token`, `netlify.token`). The default directories are
/etc/secrets, where Render mounts secret files, then ./secrets in the working directory.
A file that exists but cannot be used is named in the attempts, never skipped in silence.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from envsync.discovery.base import Attempt, StepContext, StepResult, miss, token_result

STEP = "secret_files"


def filenames_for(context: StepContext) -> list[str]:
    names = context.settings.secret_filenames
    return [name for name in names if name.split(".", 1)[0] == context.provider]


async def find(context: StepContext) -> StepResult:
    names = filenames_for(context)
    if not names:
        return miss(STEP, f"ENVSYNC_SECRET_FILENAMES names no file for {context.provider}")

    attempts: list[Attempt] = []
    for directory in context.settings.secret_dirs:
        for name in names:
            result = read_token_file(directory, name)
            if result.token is not None:
                return StepResult(
                    result.token, result.source, (*attempts, *result.attempts), result.warnings
                )
            attempts += result.attempts
    return StepResult(attempts=tuple(attempts))


def read_token_file(directory: str, name: str) -> StepResult:
    """Read one token file; `directory` is shown as configured, relative or not."""
    shown = f"{directory.rstrip('/')}/{name}"
    where = f"{STEP} {shown}"
    try:
        data = (Path(directory) / name).read_bytes()
    except FileNotFoundError:
        return miss(where, "not found")
    except IsADirectoryError:
        return miss(where, "is a directory, not a file")
    except PermissionError:
        return miss(where, "exists but cannot be read: permission denied")
    except OSError as error:
        return miss(where, f"exists but cannot be read: {error.strerror or type(error).__name__}")

    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return miss(where, "is UTF-16 text; save it as UTF-8")
    had_bom = data.startswith(codecs.BOM_UTF8)
    try:
        text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError:
        return miss(where, "is not UTF-8 text")
    return token_result(text, where, had_bom=had_bom)


def hint(context: StepContext) -> str | None:
    names = filenames_for(context)
    directories = context.settings.secret_dirs
    if not names or not directories:
        return None
    return f"write it to {directories[0].rstrip('/')}/{names[0]}"
