"""Downloads with a bounded wait: probe the server first, then download under a socket timeout.
"""

from __future__ import annotations

import socket
import threading

__all__ = ['reachable']


def reachable(host: str | None, port: int, timeout: float) -> bool:
    """True if a TCP connection to host:port opens within ``timeout`` s (DNS included, in a thread)."""
    if not host:
        return False
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    th = threading.Thread(target=probe, daemon=True)
    th.start()
    th.join(timeout + 0.5)
    return bool(ok)
