"""A fault-injecting TCP proxy for any protocol (Redis, say), between a client and a real server on loopback.

Modes, switched while connections are open:

- pass: bytes flow both ways;
- `blackhole()`: connections are still accepted and sockets stay open, but nothing is forwarded either way
  (a partition, a stuck middlebox); `restore()` resumes and delivers what was held;
- `drop_all()`: every open connection is closed on both sides, what was held with it discarded;
- `stop()`: the port closes, so that connecting is refused; `start()` opens it again.

`tests/support/pg_proxy.py` builds the PostgreSQL one on this, reading COMMITs in the stream.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from typing import TypeVar

from tests.support.servers import TcpProxy

__all__ = ["FaultProxy", "Link"]

L = TypeVar("L", bound="Link")


class Link:
    """One client connection and its upstream."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()


class FaultProxy(TcpProxy):
    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(upstream)
        self._links: list[Link] = []
        self._flowing = threading.Event()
        self._flowing.set()

    @property
    def redis_url(self) -> str:
        """A `redis://` URL through this proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._links)

    def blackhole(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        self._flowing.set()

    def drop_all(self) -> int:
        """Close every open connection on both sides; the number closed."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()
        return len(links)

    def stop(self) -> None:
        self._stop_listening()
        self.drop_all()
        self._flowing.set()  # wakes the held pipes, whose sockets are closed by now

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        link = self._track(Link(client, upstream))
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe_link, args=(link, source, target), daemon=True).start()

    def _track(self, link: L) -> L:
        with self._lock:
            self._links.append(link)
        return link

    def _pipe_link(self, link: Link, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                target.sendall(data)
        except OSError:
            pass
        finally:
            self._forget(link)

    def _forget(self, link: Link) -> None:
        with self._lock:
            if link in self._links:
                self._links.remove(link)
        link.close()
