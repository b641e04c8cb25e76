"""The suite refuses connections to anything but loopback, in-process and in subprocesses."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from pytest_socket import SocketConnectBlockedError

from tests.conftest import subprocess_env

# 192.0.2.0/24 is TEST-NET-1 (RFC 5737): reserved for documentation, never routed. The
# guard refuses the connection before any packet is sent.
DOCUMENTATION_ADDRESS = ("192.0.2.1", 80)


def test_guard_blocks_non_loopback_in_process() -> None:
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(DOCUMENTATION_ADDRESS, timeout=1)


def test_guard_allows_loopback_in_process() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass


def test_guard_blocks_non_loopback_in_subprocess() -> None:
    code = f"import socket; socket.create_connection({DOCUMENTATION_ADDRESS!r}, timeout=1)"
    completed = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True
    )
    assert completed.returncode != 0
    assert "non-loopback address" in completed.stderr
