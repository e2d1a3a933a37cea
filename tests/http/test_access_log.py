"""AccessLogMiddleware: one line per request: method, path, route, status, duration, client, request id;
a warning for a request slower than SLOW_REQUEST_SECONDS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from starlette.types import Receive, Scope, Send

from lastro.http.access_log import AccessLogMiddleware
from lastro.http.request_id import RequestIdMiddleware
from lastro.observability.logging import configure_logging
from lastro.observability.requests import requests_in_flight
from tests.support.asgi import lifespan_through
from tests.support.clock import FakeTime

pytestmark = pytest.mark.anyio

ReadLogs = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def read_logs(capsys: pytest.CaptureFixture[str]) -> ReadLogs:
    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    return read


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("logger") == "lastro.access"]


def make_app() -> RequestIdMiddleware:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/items", status_code=201)
    async def create() -> dict[str, bool]:
        return {"created": True}

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout")

    return RequestIdMiddleware(AccessLogMiddleware(app))


async def request(method: str, path: str, **kwargs: Any) -> httpx.Response:
    configure_logging("INFO", "json")  # here, in the test body, where capsys is capturing
    transport = httpx.ASGITransport(app=make_app(), client=("203.0.113.7", 51234))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)


async def test_one_line_per_request(read_logs: ReadLogs) -> None:
    """A request writes exactly one access line, at info level, from logger lastro.access."""
    await request("GET", "/items/42")
    lines = access_lines(read_logs())
    assert len(lines) == 1
    assert lines[0]["event"] == "request"
    assert lines[0]["level"] == "info"


async def test_line_has_method_path_route_and_status(read_logs: ReadLogs) -> None:
    """The line carries the method, the concrete path, the route template and the status."""
    await request("GET", "/items/42?verbose=1")
    (line,) = access_lines(read_logs())
    assert line["method"] == "GET"
    assert line["path"] == "/items/42"
    assert line["route"] == "/items/{item_id}"
    assert line["status"] == 200


async def test_line_has_duration_client_and_request_id(read_logs: ReadLogs) -> None:
    """The line carries the duration in ms, the client address and the request id echoed to the client."""
    response = await request("POST", "/items", headers={"X-Request-ID": "trace-0123456789"})
    (line,) = access_lines(read_logs())
    assert isinstance(line["duration_ms"], float)
    assert 0 <= line["duration_ms"] < 10_000
    assert line["client"] == "203.0.113.7:51234"
    assert line["request_id"] == response.headers["x-request-id"] == "trace-0123456789"
    assert line["status"] == 201


async def test_error_status_is_logged(read_logs: ReadLogs) -> None:
    """The status of an error response is what the line records."""
    await request("GET", "/teapot")
    (line,) = access_lines(read_logs())
    assert line["status"] == 418


async def test_unmatched_path_has_no_route(read_logs: ReadLogs) -> None:
    """A path no route matches is logged with its 404 and a null route."""
    await request("GET", "/nowhere")
    (line,) = access_lines(read_logs())
    assert line["status"] == 404
    assert line["path"] == "/nowhere"
    assert line["route"] is None


async def test_application_raising_before_answering_is_logged_as_500(read_logs: ReadLogs) -> None:
    """An application that raises before sending a status is logged as 500, and the error propagates."""

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    configure_logging("INFO", "json")
    scope = {"type": "http", "method": "GET", "path": "/broken", "headers": [], "client": None}
    with pytest.raises(RuntimeError, match="boom"):
        await AccessLogMiddleware(broken)(scope, None, None)  # type: ignore[arg-type]
    (line,) = access_lines(read_logs())
    assert line["status"] == 500
    assert line["client"] is None


async def test_non_http_scopes_write_no_line(read_logs: ReadLogs) -> None:
    """A lifespan scope passes through without an access line."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    configure_logging("INFO", "json")
    await AccessLogMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    assert access_lines(read_logs()) == []


async def echo_in_flight(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the request body, and the paths of the requests in flight while it was served."""
    body = (await receive())["body"]
    during = ",".join(entry["path"] for entry in requests_in_flight())
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-in-flight", during.encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
async def test_a_request_is_listed_in_flight_while_served(level: str) -> None:
    """With or without access lines, the request is in flight while served and its body and answer pass."""
    configure_logging(level, "json")
    transport = httpx.ASGITransport(app=AccessLogMiddleware(echo_in_flight))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/upload", content=b"payload")
    assert (response.content, response.headers["x-in-flight"]) == (b"payload", "/upload")
    assert requests_in_flight() == []


async def test_a_failing_request_leaves_the_in_flight_list() -> None:
    """A request whose handler raised is no longer listed in flight."""
    configure_logging("WARNING", "json")

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    with pytest.raises(RuntimeError):
        await AccessLogMiddleware(failing)(scope, None, None)  # type: ignore[arg-type]
    assert requests_in_flight() == []


async def test_lifespan_messages_pass_through_untouched() -> None:
    """A lifespan scope reaches the application with the server's own receive and send."""
    assert await lifespan_through(AccessLogMiddleware) == [{"type": "lifespan.startup"}]


def slow_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("logger") == "lastro.slow"]


def make_timed_app(time: FakeTime, slow_request_seconds: float) -> RequestIdMiddleware:
    """A report that takes `seconds` of the fake clock to build, behind the access log reading that clock."""
    app = FastAPI()

    @app.get("/reports/{report_id}")
    async def report(report_id: int, seconds: float = 0.0) -> dict[str, int]:
        await time.sleep(seconds)
        if report_id == 0:
            raise RuntimeError("no report 0")
        return {"id": report_id}

    return RequestIdMiddleware(
        AccessLogMiddleware(app, slow_request_seconds=slow_request_seconds, clock=time.clock)
    )


async def timed_request(
    path: str, *, level: str = "INFO", slow_request_seconds: float = 1.0
) -> httpx.Response:
    configure_logging(level, "json")
    transport = httpx.ASGITransport(
        app=make_timed_app(FakeTime(), slow_request_seconds), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers={"X-Request-ID": "trace-slow-0001"})


async def test_a_slow_request_logs_a_warning_with_route_duration_and_request_id(read_logs: ReadLogs) -> None:
    """A request over the threshold writes a warning from lastro.slow with its route, duration and id."""
    await timed_request("/reports/7?seconds=2.5")
    (line,) = slow_lines(read_logs())
    assert (line["level"], line["event"]) == ("warning", "slow request")
    assert (line["method"], line["route"], line["path"], line["status"]) == (
        "GET",
        "/reports/{report_id}",
        "/reports/7",
        200,
    )
    assert line["duration_ms"] == 2500.0
    assert line["request_id"] == "trace-slow-0001"


async def test_a_request_as_long_as_the_threshold_logs_no_warning(read_logs: ReadLogs) -> None:
    """Only a request longer than SLOW_REQUEST_SECONDS is slow: one that takes exactly as long is not."""
    await timed_request("/reports/7?seconds=1.0")
    lines = read_logs()
    assert len(access_lines(lines)) == 1
    assert slow_lines(lines) == []


async def test_a_slow_request_is_logged_at_log_level_warning(read_logs: ReadLogs) -> None:
    """At LOG_LEVEL=warning, with no access line, a slow request still logs its warning, without a status."""
    await timed_request("/reports/7?seconds=3", level="WARNING")
    lines = read_logs()
    assert access_lines(lines) == []
    (line,) = slow_lines(lines)
    assert (line["route"], line["duration_ms"], line["request_id"]) == (
        "/reports/{report_id}",
        3000.0,
        "trace-slow-0001",
    )
    assert line["status"] is None


async def test_a_slow_request_that_fails_is_logged_as_500(read_logs: ReadLogs) -> None:
    """A slow request whose handler raised is still logged slow, with the 500 its client gets."""
    await timed_request("/reports/0?seconds=2")
    (line,) = slow_lines(read_logs())
    assert (line["status"], line["duration_ms"]) == (500, 2000.0)


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
async def test_a_threshold_of_zero_logs_no_slow_request(read_logs: ReadLogs, level: str) -> None:
    """SLOW_REQUEST_SECONDS=0 turns the warning off, however long a request takes."""
    await timed_request("/reports/7?seconds=3600", level=level, slow_request_seconds=0)
    assert slow_lines(read_logs()) == []
