"""systemd's readiness protocol (sd_notify), without a dependency: one datagram to $NOTIFY_SOCKET.

The gateway's unit is `Type=notify`: systemd considers it started when it sends `READY=1` (once its caches
are loaded, or once `gateway.load_timeout` ran out, then with a STATUS saying it is degraded), so
`systemctl start` returns when it can answer, and bots' units can be ordered after it. `STATUS=` lines show
the load's progress in `systemctl status`. Without NOTIFY_SOCKET (not under systemd) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(*lines: str, environ: dict[str, str] | None = None) -> bool:
    """Send `lines` (e.g. "READY=1", "STATUS=...") to systemd; False when there is no socket to send to."""
    path = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # "@..." is an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", path, exc)
        return False
    return True
