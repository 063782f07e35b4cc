"""ddpm_edu.data.download: the probe and the bounded download, against real sockets on this machine.

A port that nothing listens on stands for a machine without a route; a listening socket that never
answers stands for a stalled server. No test leaves this machine.
"""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from ddpm_edu.data import download


class Refused(RuntimeError):
    """The caller's error type in these tests."""


@pytest.fixture
def closed_port() -> int:
    """A local port that nothing listens on: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """(url, socket): a local server that accepts connections (the kernel's backlog) but never sends a byte."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/file.bin", s


def test_reachable_gives_up_on_a_closed_port(closed_port):
    assert download.reachable("127.0.0.1", closed_port, timeout=1.0) is False
    assert download.reachable(None, 443, timeout=1.0) is False


def test_reachable_sees_a_listening_port(silent_server):
    url, s = silent_server
    assert download.reachable("127.0.0.1", s.getsockname()[1], timeout=1.0) is True


def test_no_route_fails_at_once_without_fetching(closed_port):
    fetched = []
    t0 = time.monotonic()
    with pytest.raises(Refused, match=r"^127\.0\.0\.1 cannot be reached: no internet\?$") as e:
        download.bounded_download(f"http://127.0.0.1:{closed_port}/x", lambda: fetched.append(1),
                                  probe_timeout=5.0, timeout=5.0, error=Refused)
    assert time.monotonic() - t0 < 2.0  # refused, not timed out
    assert fetched == [] and e.value.__cause__ is None


def test_a_silent_network_costs_the_probe_timeout(monkeypatch):
    """A network that swallows packets: the probe gives up after probe_timeout, the caller's error follows."""
    def stall(*args, **kwargs):
        time.sleep(2)
        raise OSError("no answer")

    monkeypatch.setattr(socket, "create_connection", stall)
    t0 = time.monotonic()
    with pytest.raises(Refused, match="example.org cannot be reached"):
        download.bounded_download("https://example.org/x", lambda: None, probe_timeout=0.2, timeout=5.0,
                                  error=Refused)
    assert time.monotonic() - t0 < 1.5  # probe_timeout + the thread's 0.5 s grace, not the 2 s stall


def test_the_default_port_follows_the_scheme(monkeypatch):
    probed = []
    monkeypatch.setattr(download, "reachable", lambda host, port, timeout: probed.append((host, port, timeout)))
    for url in ("https://example.org/a", "http://example.org/a", "https://example.org:8443/a"):
        with pytest.raises(Refused):
            download.bounded_download(url, lambda: None, probe_timeout=0.7, timeout=5.0, error=Refused)
    assert probed == [("example.org", 443, 0.7), ("example.org", 80, 0.7), ("example.org", 8443, 0.7)]


def test_a_stalled_server_raises_the_socket_timeout_as_the_callers_error(silent_server):
    url, _ = silent_server
    before = socket.getdefaulttimeout()
    t0 = time.monotonic()

    def fetch() -> None:
        assert socket.getdefaulttimeout() == 0.3  # else urlopen below would wait for ever
        urllib.request.urlopen(url).read()

    with pytest.raises(Refused, match=r"^the download failed: (TimeoutError|URLError): .*timed out") as e:
        download.bounded_download(url, fetch, probe_timeout=1.0, timeout=0.3, error=Refused)
    assert time.monotonic() - t0 < 3.0  # urlopen has no timeout of its own: the default socket timeout ended it
    assert socket.getdefaulttimeout() == before
    assert e.value.__cause__ is None and e.value.__suppress_context__  # the caller's message, not a chained trace


def test_a_fetch_that_succeeds_runs_under_the_timeout_and_restores_it(silent_server):
    url, _ = silent_server
    before = socket.getdefaulttimeout()
    seen = []
    download.bounded_download(url, lambda: seen.append(socket.getdefaulttimeout()), probe_timeout=1.0, timeout=12.5,
                              error=Refused)
    assert seen == [12.5] and socket.getdefaulttimeout() == before


@pytest.mark.parametrize("url", ["cifar-10-python.tar.gz", "ftp://example.org/file", "https:///nohost"])
def test_a_url_without_a_host_or_scheme_is_refused(url):
    with pytest.raises(ValueError, match="http"):
        download.bounded_download(url, lambda: None, probe_timeout=1.0, timeout=1.0, error=Refused)
