"""sd_notify over $NOTIFY_SOCKET (freqfeed.gateway.notify)."""

from __future__ import annotations

import socket
from pathlib import Path

from freqfeed.gateway.notify import notify


def test_notify_sends_one_datagram_to_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        assert notify("READY=1", "STATUS=ready", environ={"NOTIFY_SOCKET": path})
        assert sock.recv(4096) == b"READY=1\nSTATUS=ready"


def test_notify_without_a_socket_does_nothing(tmp_path: Path) -> None:
    assert not notify("READY=1", environ={})
    assert not notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "missing")})
