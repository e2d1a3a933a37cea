"""The uvicorn configuration `lastro serve` derives from the settings."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from lastro.observability.logging import configure_logging
from lastro.serve.protocol import protocol_path
from lastro.serve.runner import ServeConfig, WorkerConfig, event_loop_name, uvicorn_config
from lastro.settings import Settings, get_settings


def config_for(workers: int = 2, factory: bool = False, **settings: object) -> uvicorn.Config:
    return uvicorn_config(
        ServeConfig(target="app:app", settings=get_settings(**settings), workers=workers, factory=factory)
    )


def test_worker_count_and_target_reach_uvicorn() -> None:
    """The target, factory flag and worker count are handed to uvicorn."""
    config = config_for(workers=3, factory=True)
    assert (config.app, config.factory, config.workers) == ("app:app", True, 3)


def test_bind_becomes_host_and_port() -> None:
    """BIND is split into uvicorn's host and port."""
    config = config_for(BIND="0.0.0.0:9123")
    assert (config.host, config.port) == ("0.0.0.0", 9123)


def test_max_requests_and_jitter_reach_uvicorn() -> None:
    """MAX_REQUESTS and MAX_REQUESTS_JITTER become uvicorn's recycling limits."""
    config = config_for(MAX_REQUESTS=500, MAX_REQUESTS_JITTER=50)
    assert config.limit_max_requests == 500
    assert config.limit_max_requests_jitter == 50


def test_max_requests_zero_means_never_recycle() -> None:
    """MAX_REQUESTS=0 gives uvicorn no request limit at all."""
    assert config_for(MAX_REQUESTS=0).limit_max_requests is None


def test_timeouts_reach_uvicorn() -> None:
    """KEEPALIVE, GRACEFUL_TIMEOUT and TIMEOUT become uvicorn's keep-alive, shutdown and healthcheck."""
    config = config_for(KEEPALIVE=7, GRACEFUL_TIMEOUT=12, TIMEOUT=40)
    assert config.timeout_keep_alive == 7
    assert config.timeout_graceful_shutdown == 12
    assert config.timeout_worker_healthcheck == 40


def test_fractional_timeouts_round_up_never_to_zero() -> None:
    """uvicorn takes whole seconds: 0.5 s becomes 1 s, so a sub-second TIMEOUT cannot kill every worker."""
    config = config_for(KEEPALIVE=0.5, GRACEFUL_TIMEOUT=2.2, TIMEOUT=0.5)
    assert config.timeout_keep_alive == 1
    assert config.timeout_graceful_shutdown == 3
    assert config.timeout_worker_healthcheck == 1


def test_max_connections_is_uvicorns_concurrency_limit() -> None:
    """MAX_CONNECTIONS caps the open connections per worker."""
    assert config_for(MAX_CONNECTIONS=64).limit_concurrency == 64


def test_uvicorn_keeps_its_listen_backlog() -> None:
    """lastro leaves the listen backlog at uvicorn's default."""
    assert config_for().backlog == 2048


def test_uvicorn_access_log_and_server_header_are_off() -> None:
    """lastro writes its own access line, and no Server header advertises the stack."""
    config = config_for()
    assert config.access_log is False
    assert config.server_header is False


def test_http_protocol_is_the_draining_one() -> None:
    """Workers use lastro's protocol that drains fresh connections at shutdown."""
    path = config_for().http
    assert path == protocol_path()
    assert path.startswith("lastro.serve.protocol:Draining")


def test_log_config_carries_the_level_and_format() -> None:
    """uvicorn gets lastro's logging config with LOG_LEVEL and LOG_FORMAT."""
    log_config = config_for(LOG_LEVEL="WARNING", LOG_FORMAT="console").log_config
    assert isinstance(log_config, dict)
    assert log_config["root"]["level"] == "WARNING"
    assert log_config["formatters"]["lastro"]["fmt"] == "console"


def test_log_format_follows_the_environment_when_unset() -> None:
    """Without LOG_FORMAT, production logs JSON to uvicorn too."""
    settings = Settings(ENVIRONMENT="production", SECRET_KEY="k" * 48)
    config = uvicorn_config(ServeConfig(target="app:app", settings=settings, workers=2))
    assert isinstance(config.log_config, dict)
    assert config.log_config["formatters"]["lastro"]["fmt"] == "json"


def test_event_loop_name_is_uvloop_when_installed() -> None:
    """The banner names uvloop where it is installed (not on Windows), else asyncio."""
    has_uvloop = importlib.util.find_spec("uvloop") is not None and sys.platform != "win32"
    assert event_loop_name() == ("uvloop" if has_uvloop else "asyncio")


def test_header_timeout_reaches_the_protocol_through_the_config() -> None:
    """HEADER_TIMEOUT rides on the worker's uvicorn config, where lastro's protocol reads it."""
    config = config_for(HEADER_TIMEOUT=3.5)
    assert isinstance(config, WorkerConfig)
    assert config.header_timeout == 3.5


def test_forwarded_headers_are_believed_from_no_one_by_default() -> None:
    """Without TRUSTED_PROXIES, X-Forwarded-For is ignored, even from loopback."""
    config = config_for()
    assert config.proxy_headers is False


def test_trusted_proxies_reach_uvicorn_as_networks() -> None:
    """TRUSTED_PROXIES become uvicorn's forwarded_allow_ips, a network with host bits set normalized."""
    config = config_for(TRUSTED_PROXIES="127.0.0.1,10.1.2.3/8")
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == ["127.0.0.1", "10.0.0.0/8"]


def test_a_factory_refusing_its_settings_is_a_startup_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A factory raising ConfigurationError exits with uvicorn's start-up failure code, one line logged."""
    (tmp_path / "refusing.py").write_text(
        "from lastro import ConfigurationError\n"
        "def create():\n"
        "    raise ConfigurationError('REGION must be set: set REGION=eu')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    configure_logging("INFO", "json")  # as a worker has it, writing to this test's captured stdout
    config = WorkerConfig("refusing:create", factory=True, log_config=None)
    with pytest.raises(SystemExit) as exited:
        config.load()
    assert exited.value.code == STARTUP_FAILURE
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (line["level"], line["logger"]) == ("error", "lastro.serve")
    assert line["event"] == "the application refused its settings: REGION must be set: set REGION=eu"
