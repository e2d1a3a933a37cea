"""A fault-injecting TCP proxy between lastro and a real PostgreSQL, on loopback.

Modes, switched while connections are open:

- pass: bytes flow both ways;
- `drop_all()`: every open connection is closed on both sides; new ones are accepted and pass;
- `blackhole()`: sockets stay open and the kernel keeps acknowledging, but nothing is forwarded either
  way (a partition, a stuck middlebox); `restore()` resumes and delivers what was held;
- `lose_commit_replies(n)`: the next `n` COMMITs reach the server, then the server's reply is dropped and
  that connection closed, so the client cannot know that its COMMIT was applied;
- `blackhole_after_commit()`: the next COMMIT reaches the server, then everything is blackholed.

COMMITs are recognized in the frontend protocol: after the startup packet (and any SSLRequest or
GSSENCRequest before it, which carry no type byte), every message is one type byte and an int32 length;
psycopg sends COMMIT as a simple query (`Q`). Use `sslmode=disable` in URLs through the proxy, so the
stream is readable.
"""

from __future__ import annotations

import socket
import struct
import threading

from tests.support.fault_proxy import FaultProxy, Link

__all__ = ["PgProxy"]

_NEGOTIATION_CODES = (80877103, 80877104)  # SSLRequest, GSSENCRequest: a startup packet follows


class _Link(Link):
    """One client connection and its upstream, with what the proxy is to do to this one."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        super().__init__(client, upstream)
        self.lose_reply = False  # a COMMIT went through: drop the next reply and close
        self._buffer = b""
        self._started = False

    def commits_in(self, data: bytes) -> int:
        """How many complete COMMIT simple queries `data` finishes, parsing across chunks."""
        self._buffer += data
        commits = 0
        while True:
            if not self._started:
                if len(self._buffer) < 8:
                    return commits
                length, code = struct.unpack("!ii", self._buffer[:8])
                if len(self._buffer) < length:
                    return commits
                self._buffer = self._buffer[length:]
                self._started = code not in _NEGOTIATION_CODES
                continue
            if len(self._buffer) < 5:
                return commits
            kind, length = self._buffer[:1], struct.unpack("!i", self._buffer[1:5])[0]
            if len(self._buffer) < 1 + length:
                return commits
            body, self._buffer = self._buffer[5 : 1 + length], self._buffer[1 + length :]
            if kind == b"Q" and body.rstrip(b"\0").strip().rstrip(b";").upper() == b"COMMIT":
                commits += 1


class PgProxy(FaultProxy):
    """`FaultProxy`'s pass, blackhole, drop and stop, and what it does to COMMITs."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        super().__init__(upstream)
        self.commits_seen = 0
        self._lose_commits = 0
        self._blackhole_after_commit = False

    def url(self, database_url: str) -> str:
        """`database_url` (on 127.0.0.1:5432) through this proxy, without TLS."""
        through = database_url.replace(":5432/", f":{self.port}/")
        return through + ("&" if "?" in through else "?") + "sslmode=disable"

    def lose_commit_replies(self, count: int) -> None:
        with self._lock:
            self._lose_commits += count

    def blackhole_after_commit(self) -> None:
        with self._lock:
            self._blackhole_after_commit = True

    @property
    def pending_commit_losses(self) -> int:
        """COMMIT replies still to be lost."""
        with self._lock:
            return self._lose_commits

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        link = self._track(_Link(client, upstream))
        threading.Thread(target=self._frontend, args=(link,), daemon=True).start()
        threading.Thread(target=self._backend, args=(link,), daemon=True).start()

    def _frontend(self, link: _Link) -> None:
        try:
            while data := link.client.recv(65536):
                self._flowing.wait()
                if commits := link.commits_in(data):
                    self._on_commits(link, commits)
                link.upstream.sendall(data)  # past the wait: forwarded even if just blackholed
        except OSError:
            pass
        finally:
            self._forget(link)

    def _on_commits(self, link: _Link, commits: int) -> None:
        with self._lock:
            self.commits_seen += commits
            if self._lose_commits > 0:
                self._lose_commits -= 1
                link.lose_reply = True  # set before the COMMIT is forwarded: its reply cannot overtake
            elif self._blackhole_after_commit:
                self._blackhole_after_commit = False
                self._flowing.clear()  # the reply, and everything else, is held from now on

    def _backend(self, link: _Link) -> None:
        try:
            while data := link.upstream.recv(65536):
                self._flowing.wait()
                if link.lose_reply:
                    break  # the COMMIT's reply: never delivered
                link.client.sendall(data)
        except OSError:
            pass
        finally:
            self._forget(link)
