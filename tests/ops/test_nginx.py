"""The nginx configuration: accepted by `nginx -t`, and its numbers agree with lastro's settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lastro.errors import ConfigurationError
from lastro.ops.nginx import (
    NginxSite,
    nginx_files,
    proxy_trusted,
    read_timeout,
    trust_warning,
    upstream_keepalive_timeout,
)
from lastro.ops.rendering import write_files
from lastro.settings import Settings, load_settings
from tests.support.nginx import NGINX, check, wrap

needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed: `apt-get install -y nginx-light` (.ci/run does)"
)
TWO = NginxSite(("127.0.0.1:8001", "127.0.0.1:8002"), listen="127.0.0.1:8080")


def conf_of(settings: Settings, site: NginxSite = TWO) -> str:
    return nginx_files(settings, site)[f"{settings.SERVICE_NAME}.conf"]


def directive(conf: str, name: str) -> list[str]:
    """The values of every `name ...;` line that is not a comment."""
    return re.findall(rf"^\s*{name}\s+([^;#{{}}]*);", conf, re.MULTILINE)


@needs_nginx
@pytest.mark.parametrize("keepalive", ["5", "0", "0.5"])
def test_nginx_accepts_the_configuration(tmp_path: Path, keepalive: str) -> None:
    """`nginx -t` passes on a whole nginx.conf that includes the written file, keep-alive on or off."""
    settings = load_settings(SERVICE_NAME="orders", KEEPALIVE=keepalive)
    write_files(tmp_path, nginx_files(settings, TWO))
    result = check(wrap(tmp_path, tmp_path / "orders.conf"))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@needs_nginx
def test_nginx_check_is_real(tmp_path: Path) -> None:
    """The check catches a broken file: a directive nginx does not know fails `nginx -t`."""
    (tmp_path / "broken.conf").write_text("upstream x { server 127.0.0.1:1; keepalive_forever 3; }\n")
    assert check(wrap(tmp_path, tmp_path / "broken.conf")).returncode != 0


def test_every_instance_is_an_upstream_server_with_passive_checks() -> None:
    """Each --upstream is a `server` line with max_fails/fail_timeout; the upstream keeps connections."""
    conf = conf_of(load_settings(SERVICE_NAME="orders"))
    assert directive(conf, "server") == [
        "127.0.0.1:8001 max_fails=3 fail_timeout=5s",
        "127.0.0.1:8002 max_fails=3 fail_timeout=5s",
    ]
    assert directive(conf, "keepalive") == ["32"]
    assert directive(conf, "proxy_http_version") == ["1.1"]
    assert directive(conf, "proxy_next_upstream_tries") == ["2"]


def test_the_instance_defaults_to_bind() -> None:
    """Without --upstream the one instance is BIND, on loopback when BIND is every address."""
    conf = conf_of(load_settings(BIND="0.0.0.0:9000"), NginxSite())
    assert directive(conf, "server") == ["127.0.0.1:9000 max_fails=3 fail_timeout=5s"]


@pytest.mark.parametrize(("keepalive", "expected"), [("5", "4s"), ("1.5", "750ms"), ("30", "29s")])
def test_upstream_keepalive_closes_before_lastro_does(keepalive: str, expected: str) -> None:
    """nginx's upstream keepalive_timeout is shorter than KEEPALIVE, so it never reuses a closing one."""
    settings = load_settings(KEEPALIVE=keepalive)
    timeout = upstream_keepalive_timeout(settings)
    assert timeout is not None
    assert 0 < timeout < settings.KEEPALIVE
    assert directive(conf_of(settings), "keepalive_timeout") == [expected]


def test_without_keepalive_nginx_keeps_no_connection() -> None:
    """KEEPALIVE=0: no keepalive directive at all."""
    conf = conf_of(load_settings(KEEPALIVE="0"))
    assert directive(conf, "keepalive") == []
    assert directive(conf, "keepalive_timeout") == []


@pytest.mark.parametrize(("request_timeout", "expected"), [("30", "35s"), ("120", "125s"), ("5", "30s")])
def test_nginx_waits_longer_than_request_timeout(request_timeout: str, expected: str) -> None:
    """proxy_read_timeout exceeds REQUEST_TIMEOUT (lastro answers 504 first) and the WebSocket pings."""
    settings = load_settings(REQUEST_TIMEOUT=request_timeout)
    assert read_timeout(settings) > settings.REQUEST_TIMEOUT
    assert directive(conf_of(settings), "proxy_read_timeout") == [expected]


def test_body_limit_is_max_body_bytes() -> None:
    """client_max_body_size is MAX_BODY_BYTES (0: no limit, in both)."""
    assert directive(conf_of(load_settings(MAX_BODY_BYTES="1048576")), "client_max_body_size") == ["1048576"]
    assert directive(conf_of(load_settings(MAX_BODY_BYTES="0")), "client_max_body_size") == ["0"]


def test_only_idempotent_requests_are_retried() -> None:
    """Retries on error, timeout, 502 and 503, without `non_idempotent`: a POST is never sent twice."""
    (retried,) = directive(conf_of(load_settings()), "proxy_next_upstream")
    assert retried.split() == ["error", "timeout", "http_502", "http_503"]


def test_websocket_upgrade_is_generic() -> None:
    """The Connection header comes from a map of $http_upgrade, on the one location: every route upgrades."""
    conf = conf_of(load_settings(SERVICE_NAME="orders"))
    assert "map $http_upgrade $orders_connection {" in conf
    assert directive(conf, "proxy_set_header") == [
        "Upgrade $http_upgrade",
        "Connection $orders_connection",
        "Host $host",
        "X-Forwarded-For $remote_addr",
        "X-Forwarded-Proto $scheme",
        "X-Request-ID $request_id",
    ]


def test_loopback_nginx_must_be_trusted() -> None:
    """Instances on loopback: a warning naming TRUSTED_PROXIES=127.0.0.1 unless 127.0.0.1 is trusted."""
    upstreams = ["127.0.0.1:8001"]
    warning = trust_warning(load_settings(), upstreams, None)
    assert warning is not None
    assert "set TRUSTED_PROXIES=127.0.0.1" in warning
    assert trust_warning(load_settings(TRUSTED_PROXIES="127.0.0.0/8"), upstreams, None) is None


def test_a_remote_nginx_is_checked_by_its_given_address() -> None:
    """Instances elsewhere: --proxy-address is checked against TRUSTED_PROXIES."""
    settings = load_settings(TRUSTED_PROXIES="10.0.0.0/24")
    assert proxy_trusted(settings, "10.0.0.7")
    assert trust_warning(settings, ["10.0.0.5:8000"], "10.0.0.7") is None
    warning = trust_warning(settings, ["10.0.0.5:8000"], "10.0.1.7")
    assert warning is not None
    assert "TRUSTED_PROXIES does not include 10.0.1.7" in warning


@pytest.mark.parametrize("upstream", ["http://127.0.0.1:8000", "127.0.0.1", "127.0.0.1:0", "a b:80"])
def test_a_bad_upstream_is_refused(upstream: str) -> None:
    """An --upstream that is not HOST:PORT is refused naming the form."""
    with pytest.raises(ConfigurationError, match="--upstream must be HOST:PORT"):
        NginxSite((upstream,))


def test_bind_on_port_zero_needs_upstreams() -> None:
    """BIND with port 0 names no instance: the error asks for --upstream."""
    with pytest.raises(ConfigurationError, match="--upstream"):
        conf_of(load_settings(BIND="127.0.0.1:0"), NginxSite())
