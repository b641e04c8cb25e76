"""Render, Netlify and Vault API emulators, served on loopback for tests, demos and trials.

Nothing here imports envsync's providers, planner, engine, sources or discovery, and
they import nothing from here, so that a misreading of a platform shared by both sides
cannot pass every test.
"""

from envsync.emulators.common import (
    ApiError,
    ConfigError,
    Emulator,
    ObservedResponse,
    ResponseObserver,
    SeedError,
    add_response_observer,
)
from envsync.emulators.netlify import NetlifyEmulator
from envsync.emulators.render import RenderEmulator
from envsync.emulators.seed import (
    DEFAULT_NETLIFY_TOKEN,
    DEFAULT_RENDER_TOKEN,
    DEFAULT_VAULT_TOKEN,
    default_seed,
)
from envsync.emulators.server import EmulatorSet, describe, load_seed_file, run_emulators
from envsync.emulators.vault import VaultEmulator

__all__ = [
    "DEFAULT_NETLIFY_TOKEN",
    "DEFAULT_RENDER_TOKEN",
    "DEFAULT_VAULT_TOKEN",
    "ApiError",
    "ConfigError",
    "Emulator",
    "EmulatorSet",
    "NetlifyEmulator",
    "ObservedResponse",
    "RenderEmulator",
    "ResponseObserver",
    "SeedError",
    "VaultEmulator",
    "add_response_observer",
    "default_seed",
    "describe",
    "load_seed_file",
    "run_emulators",
]
