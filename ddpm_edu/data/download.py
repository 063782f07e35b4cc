"""Downloads with a bounded wait: probe the server first, then download under a socket timeout.

CIFAR-10 (:mod:`ddpm_edu.data.cifar10`) and the Inception weights of FID (:mod:`ddpm_edu.eval.fid`)
both come from the internet, and both must fail within seconds on a machine without it, with a
message that says what to do instead. :func:`bounded_download` is that policy, written once: a TCP
probe of the host (:func:`reachable`), then the caller's download with a socket timeout, and every
failure turned into the caller's own error.
"""

from __future__ import annotations

import socket
import threading
from typing import Callable
from urllib.parse import urlparse

__all__ = ["reachable", "bounded_download"]

DEFAULT_PORTS = {"https": 443, "http": 80}


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


def bounded_download(
    url: str,
    fetch: Callable[[], object],
    *,
    probe_timeout: float,
    timeout: float,
    error: Callable[[str], Exception],
) -> None:
    """Run ``fetch()``, which downloads ``url``, so that neither a missing route nor a stalled server hangs.

    1. The host of ``url`` must accept a TCP connection within ``probe_timeout`` s, else
       ``error("<host> cannot be reached: no internet?")`` is raised and ``fetch`` never runs.
    2. ``fetch()`` runs with the default socket timeout set to ``timeout`` s (restored afterwards), so a
       transfer that stalls raises instead of waiting forever. Any exception it raises becomes
       ``error("the download failed: <type>: <message>")``.

    ``error`` builds the caller's exception from that reason; its message says what to do instead.
    """
    parts = urlparse(url)
    if not parts.hostname or parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"expected an http(s) URL with a host name, got {url!r}")
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    if not reachable(parts.hostname, port, probe_timeout):
        raise error(f"{parts.hostname} cannot be reached: no internet?")
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        fetch()
    except Exception as e:  # URLError, timeouts, a wrong hash, a bad archive...
        raise error(f"the download failed: {type(e).__name__}: {e}") from None
    finally:
        socket.setdefaulttimeout(old)
