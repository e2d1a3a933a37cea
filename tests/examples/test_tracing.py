"""The orders service under `lastro serve` with TRACING=otlp: its spans reach an OTLP/HTTP receiver on
loopback, at the address the standard OTEL_EXPORTER_OTLP_ENDPOINT names, by the time the service has
stopped.

The receiver is a real HTTP server that decodes what the exporter sends with OpenTelemetry's own protobuf
messages; the spans are exported in batches, so those of the last requests travel at shutdown.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.examples.conftest import orders_service

TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


class Receiver(ThreadingHTTPServer):
    """Collects the spans of every OTLP/HTTP export POSTed to /v1/traces."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        export = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource in export.resource_spans:
                for scope in resource.scope_spans:
                    self.server.spans.extend(scope.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        status = 200 if self.path == "/v1/traces" else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test reads the spans, not the receiver's access log


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(10)
    server.server_close()


def test_a_login_is_exported_as_a_server_span_and_a_unit_span(tmp_path: Path, receiver: Receiver) -> None:
    """A login carrying a traceparent arrives at the receiver as two spans of the caller's trace: the
    server span `POST /api/auth/token` under the caller's span, and the user lookup under it."""
    with orders_service(
        "sqlite", tmp_path, WORKERS="1", TRACING="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint
    ) as server:
        response = httpx.post(
            f"{server.url}/api/auth/token",
            data={"username": "admin", "password": "admin"},
            headers={"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"},
        )
        assert response.status_code == 200
    with receiver.lock:
        spans = {span.name: span for span in receiver.spans if span.trace_id.hex() == TRACE}
    login = spans["POST /api/auth/token"]
    lookup = spans["db.read accounts.find_user"]
    assert (login.kind, login.parent_span_id.hex()) == (Span.SPAN_KIND_SERVER, CALLER_SPAN)
    assert lookup.parent_span_id == login.span_id
