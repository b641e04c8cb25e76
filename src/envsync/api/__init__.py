"""The HTTP API of `envsync serve` (FastAPI).

`create_app(service)` builds the app around a Service; `create_app_from_environment` is
the factory uvicorn calls in each worker process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from envsync.service import Service


def create_app(service: Service, **options: Any) -> FastAPI:
    from envsync.api.app import create_app as build

    return build(service, **options)


def create_app_from_environment() -> FastAPI:
    from envsync.api.app import create_app_from_environment as build

    return build()


__all__ = ["create_app", "create_app_from_environment"]
