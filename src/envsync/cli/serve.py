"""`envsync serve`: the HTTP API, the scheduler and the event sinks, under uvicorn.

The server does not start without ENVSYNC_API_TOKEN unless it binds to a loopback
address and `--insecure-local` is given. Then routes need no token, and a warning is
logged. Before serving, it marks runs that dead processes left `running` as interrupted.

With `--workers N` uvicorn starts N processes, each building the app with
`envsync.api.create_app_from_environment`. They share the store, the target locks and the
schedule's claims, so a due run happens once. Metrics are merged across the workers
through prometheus-client's multiprocess mode, in PROMETHEUS_MULTIPROC_DIR (a temporary
folder unless it is set).
"""

from __future__ import annotations

import logging
import os
import tempfile

import typer

from envsync.cli.app import app, fail

logger = logging.getLogger(__name__)


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="IP address to listen on; 0.0.0.0 listens on every interface."
    ),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port to listen on."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Worker processes (uvicorn's multiprocess mode)."
    ),
    insecure_local: bool = typer.Option(
        False,
        "--insecure-local",
        help="Serve without ENVSYNC_API_TOKEN; only with a loopback --host such as 127.0.0.1.",
    ),
) -> None:
    """Serve the HTTP API and run scheduled syncs until interrupted."""
    from envsync.api.app import INSECURE_LOCAL_VARIABLE
    from envsync.api.auth import is_loopback_host
    from envsync.config import load_settings
    from envsync.errors import ConfigError
    from envsync.logs import configure_logging, register_credentials

    try:
        settings = load_settings()
    except ConfigError as error:
        fail(str(error))
    configure_logging(settings.log_level, settings.log_format)
    register_credentials(settings)

    if insecure_local and not is_loopback_host(host):
        fail(
            f"--insecure-local serves without a token, so it needs a loopback --host such as "
            f"127.0.0.1 or ::1, not {host}"
        )
    serve_without_token = settings.api_token is None
    if serve_without_token and not insecure_local:
        fail(
            "ENVSYNC_API_TOKEN is not set; set it to a long random string (clients send it as "
            "Authorization: Bearer ...), or serve on a loopback --host with --insecure-local"
        )
    if serve_without_token:
        logger.warning(
            "serving without ENVSYNC_API_TOKEN (--insecure-local): every route is open to "
            "anyone who can reach %s",
            host,
        )
        os.environ[INSECURE_LOCAL_VARIABLE] = "1"
    else:
        os.environ.pop(INSECURE_LOCAL_VARIABLE, None)

    _mark_interrupted_runs(settings.database_url.get_secret_value())
    if workers > 1:
        _share_metrics_between_workers()
    _run_uvicorn(host, port, workers, settings.shutdown_grace_s)


def _mark_interrupted_runs(database_url: str) -> None:
    from envsync.errors import EnvsyncError
    from envsync.store import open_store

    try:
        with open_store(database_url) as store:
            interrupted = store.mark_interrupted_runs()
    except EnvsyncError as error:
        fail(f"the store cannot be opened: {error}")
    if interrupted:
        logger.warning(
            "marked %d runs of stopped processes as interrupted: %s",
            len(interrupted),
            ", ".join(interrupted),
        )


def _share_metrics_between_workers() -> None:
    from envsync.api.metrics import MULTIPROCESS_DIR_VARIABLE

    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        return
    folder = tempfile.mkdtemp(prefix="envsync-metrics-")
    os.environ[MULTIPROCESS_DIR_VARIABLE] = folder
    logger.info("workers share their metrics in %s", folder)


def _run_uvicorn(host: str, port: int, workers: int, grace_s: float) -> None:
    import uvicorn

    # log_config=None keeps the handlers configure_logging installed, so uvicorn's lines
    # come out in ENVSYNC_LOG_FORMAT too.
    uvicorn.run(
        "envsync.api:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        timeout_graceful_shutdown=max(1, round(grace_s)),
        server_header=False,
    )
