"""A real nginx for tests: its own prefix, temporary and log files, in the foreground, never as a daemon.

`wrap(conf)` is a whole nginx.conf around a file meant for nginx's `http` block (what `lastro deploy nginx`
writes), with every path nginx would otherwise take from its build (/var/lib/nginx, /run/nginx.pid,
/var/log/nginx) moved under the test's directory. `NginxProcess` checks it (`nginx -t`) and runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.process import ServerProcess

__all__ = ["NGINX", "NginxProcess", "check", "wrap"]

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
)


def wrap(directory: Path, site: Path) -> Path:
    """Write `directory/nginx.conf`, which includes `site` in its http block; return its path."""
    temporary = directory / "temp"
    temporary.mkdir(exist_ok=True)
    # Workers of a root master switch to `nobody`, who could not read the test's directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} info;
events {{ worker_connections 512; }}
http {{
    # Which instance answered each request, and every instance tried before it (`A, B` is a retry).
    log_format upstreams '$request_method $uri $status $upstream_addr|$upstream_status';
    access_log {directory / "access.log"} upstreams;
    client_body_temp_path {temporary / "body"};
    proxy_temp_path {temporary / "proxy"};
    fastcgi_temp_path {temporary / "fastcgi"};
    uwsgi_temp_path {temporary / "uwsgi"};
    scgi_temp_path {temporary / "scgi"};
    include {site};
}}
"""
    )
    return conf


def check(conf: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` of `conf`, with its prefix in the configuration's directory."""
    assert NGINX is not None
    return subprocess.run(
        [NGINX, "-t", "-p", str(conf.parent), "-e", "stderr", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class NginxProcess(ServerProcess):
    """nginx in the foreground on `port` (which the configuration's `listen` names), ready at `ready_path`."""

    def __init__(
        self, conf: Path, port: int, ready_path: str = "/health/ready", site: Path | None = None
    ) -> None:
        assert NGINX is not None
        self.site = site or conf  # the included file a test edits before a reload (SIGHUP)
        argv = [NGINX, "-p", str(conf.parent), "-e", "stderr", "-c", str(conf)]
        super().__init__(argv, dict(os.environ), conf.parent / "nginx.out", port=port, ready_path=ready_path)

    def access_lines(self) -> list[tuple[str, str, int, list[str], list[str]]]:
        """Each request nginx logged: method, path, status, instances tried, each one's status."""
        path = Path(self.argv[2]) / "access.log"
        lines = []
        for raw in path.read_text(errors="replace").splitlines() if path.exists() else []:
            method, uri, status, upstream = raw.split(" ", 3)
            tried, _, statuses = upstream.partition("|")
            lines.append((method, uri, int(status), tried.split(", "), statuses.split(", ")))
        return lines
