"""The target URL: loopback unless its host is named with --allow-host."""

from __future__ import annotations

import pytest

from lastro.errors import ConfigurationError
from lastro.loadtest.target import check_target


@pytest.mark.parametrize(
    ("url", "origin", "path"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000", "/"),
        ("http://localhost:8000/health/live", "http://localhost:8000", "/health/live"),
        ("http://[::1]:9000/api/orders?limit=5", "http://[::1]:9000", "/api/orders?limit=5"),
        ("https://127.0.0.2/", "https://127.0.0.2:443", "/"),
    ],
)
def test_loopback_targets_are_accepted(url: str, origin: str, path: str) -> None:
    """Loopback addresses and localhost need no permission; the origin and the path are split."""
    target = check_target(url)
    assert (target.origin, target.path, target.loopback) == (origin, path, True)


def test_another_host_is_refused_naming_the_option() -> None:
    """A non-loopback host is refused with the --allow-host that would permit it."""
    with pytest.raises(ConfigurationError, match=r"--allow-host api\.example\.com"):
        check_target("http://api.example.com:8000/")


def test_an_allowed_host_is_accepted_but_not_loopback() -> None:
    """A host given with --allow-host (in any case) is accepted; its CPU is not measured as local."""
    target = check_target("http://API.example.com/", ["api.example.com"])
    assert (target.origin, target.loopback) == ("http://api.example.com:80", False)


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/", "127.0.0.1:8000", "http://127.0.0.1:99999/", "http:///x"]
)
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    """Anything but http(s)://HOST[:PORT][/PATH] is refused, showing the form."""
    with pytest.raises(ConfigurationError, match="URL must be"):
        check_target(url)
