"""The `file` source: a canonical .env file, or standard input when the file is `-`."""

from __future__ import annotations

import sys

from envsync import dotenv
from envsync.model import CanonicalSet
from envsync.sources.base import SourceRequest

STDIN_NAME = "-"


async def load(request: SourceRequest) -> CanonicalSet:
    """Parse the canonical file with the .env rules.

    `${NAME}` resolves against keys defined earlier in the file, then the environment,
    unless ENVSYNC_INTERPOLATE is false.
    """
    interpolate = request.settings.interpolate
    if request.file == STDIN_NAME:
        stream = request.stdin if request.stdin is not None else sys.stdin.buffer
        parsed = dotenv.read_stream(
            stream, origin="<stdin>", environ=request.environ, interpolate=interpolate
        )
        return CanonicalSet("file <stdin>", dict(parsed.values), tuple(parsed.warnings))

    parsed = dotenv.read_file(request.file, environ=request.environ, interpolate=interpolate)
    return CanonicalSet(f"file {request.file}", dict(parsed.values), tuple(parsed.warnings))
