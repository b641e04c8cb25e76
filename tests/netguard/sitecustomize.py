"""Refuse connections to anything but loopback in Python subprocesses started by the tests.

pytest-socket guards the test process itself; the tests put this folder on PYTHONPATH of
every Python subprocess they start (the CLI, `envsync serve` replicas, emulators), so the
same rule holds there. A refused connection raises OSError before any packet is sent.
"""

import ipaddress
import socket

_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # a Unix socket path: local by definition
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise OSError(f"envsync test guard: connection to non-loopback address {address!r} refused")
    _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise OSError(f"envsync test guard: connection to non-loopback address {address!r} refused")
    return _original_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
