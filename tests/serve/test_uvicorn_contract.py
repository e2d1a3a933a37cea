"""What lastro relies on inside uvicorn, beyond its public API: names, signatures, attributes, call sites.

`lastro.serve` subclasses uvicorn's supervisor and HTTP protocols and calls a private module. pyproject.toml
pins uvicorn below its next minor version; each check here names what lastro uses and where, so that a
failure after an upgrade says what to look at. Once it is looked at and fixed, `CHECKED_AGAINST` moves.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
import logging
import re
import signal
import textwrap
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn import _subprocess
from uvicorn.config import Config
from uvicorn.protocols.http import h11_impl, httptools_impl
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.server import Server, ServerState
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from lastro.serve.protocol import DrainingH11Protocol, DrainingHttpToolsProtocol, protocol_path
from lastro.serve.supervisor import Supervisor, WorkerProcess
from tests.support.signals import signals_kept

CHECKED_AGAINST = "0.55"  # the uvicorn minor version this contract was read from; pyproject.toml pins it
SUPERVISOR = "lastro/serve/supervisor.py"
PROTOCOL = "lastro/serve/protocol.py"
RUNNER = "lastro/serve/runner.py"
WHOLE = "lastro/serve/whole_responses.py"
PROTOCOLS = [h11_impl.H11Protocol, httptools_impl.HttpToolsProtocol]


def changed(what: str, where: str) -> str:
    return f"uvicorn {uvicorn.__version__}: {what} changed; lastro relies on it in {where}"


def parameters(function: Callable[..., Any]) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


def source(function: Callable[..., Any]) -> str:
    return textwrap.dedent(inspect.getsource(function))


def shape(function: Callable[..., Any]) -> str:
    """A digest of a function's code: its docstring, comments and formatting do not count."""
    definition = ast.parse(source(function)).body[0]
    assert isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef)
    if ast.get_docstring(definition) is not None:
        definition.body = definition.body[1:]
    return hashlib.sha256(ast.unparse(definition).encode()).hexdigest()[:16]


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_installed_uvicorn_is_the_one_this_contract_was_checked_against() -> None:
    """A new uvicorn minor version is a decision: re-read what follows, then move CHECKED_AGAINST."""
    installed = ".".join(uvicorn.__version__.split(".")[:2])
    assert installed == CHECKED_AGAINST, changed(
        f"the version (contract checked against {CHECKED_AGAINST}.x)", "lastro.serve, see this module"
    )


# The supervisor: uvicorn._subprocess and uvicorn.supervisors.multiprocess.


def test_subprocess_started_takes_config_target_sockets_stdin() -> None:
    """Forked and spawned workers call `uvicorn._subprocess.subprocess_started` with these arguments."""
    expected = ["config", "target", "sockets", "stdin_fileno"]
    assert parameters(_subprocess.subprocess_started)[:4] == expected, changed(
        "uvicorn._subprocess.subprocess_started(config, target, sockets, stdin_fileno)", SUPERVISOR
    )


def test_multiprocess_module_names_exist() -> None:
    """`SIGNALS` and `logger` of uvicorn.supervisors.multiprocess, and uvicorn.config.STARTUP_FAILURE."""
    assert isinstance(multiprocess.SIGNALS, dict), changed("multiprocess.SIGNALS (a dict)", SUPERVISOR)
    assert all(isinstance(number, signal.Signals | int) for number in multiprocess.SIGNALS), changed(
        "multiprocess.SIGNALS keys (signal numbers)", f"{SUPERVISOR} _forked_worker"
    )
    assert isinstance(multiprocess.logger, logging.Logger), changed("multiprocess.logger", SUPERVISOR)
    assert isinstance(uvicorn.config.STARTUP_FAILURE, int), changed(
        "uvicorn.config.STARTUP_FAILURE", f"{SUPERVISOR} and {RUNNER}"
    )


def test_process_interface() -> None:
    """`Process(config, sockets)` and what lastro calls on it: the child process, the pipe, the lifecycle."""
    where = f"{SUPERVISOR} WorkerProcess, worker_answers, Supervisor"
    assert parameters(Process.__init__) == ["config", "sockets"], changed(
        "Process.__init__(config, sockets)", where
    )
    assert parameters(Process.target)[:1] == ["sockets"], changed("Process.target(sockets)", where)
    assert parameters(Process.wait_until_ready)[:2] == ["timeout", "should_exit"], changed(
        "Process.wait_until_ready(timeout, should_exit)", f"{SUPERVISOR} Supervisor.restart_all"
    )
    for name in ("start", "kill", "join", "terminate"):
        assert callable(getattr(Process, name, None)), changed(f"Process.{name}()", where)
    for name in ("pid", "exitcode"):
        assert isinstance(getattr(Process, name, None), property), changed(f"Process.{name}", where)
    process = Process(Config(hello), [])
    try:
        assert hasattr(process, "process"), changed("Process.process (replaced by WorkerProcess)", where)
        assert hasattr(process, "parent_conn"), changed("Process.parent_conn (the ping pipe)", where)
        assert not process.process.is_alive()
    finally:
        process.parent_conn.close()
        process.child_conn.close()


def test_worker_process_is_still_a_process() -> None:
    """WorkerProcess only swaps `process`: the rest of uvicorn's Process must apply to it unchanged."""
    assert issubclass(WorkerProcess, Process)
    assert set(vars(WorkerProcess)) - {"__doc__", "__module__", "__init__"} == set()


def test_multiprocess_interface() -> None:
    """`Multiprocess(config, sockets)` and the attributes Supervisor reads and writes."""
    where = f"{SUPERVISOR} Supervisor"
    assert parameters(Multiprocess.__init__) == ["config", "sockets"], changed(
        "Multiprocess.__init__(config, sockets)", where
    )
    with signals_kept(multiprocess.SIGNALS):
        supervisor = Multiprocess(Config(hello, workers=3), [])
    for name in ("config", "sockets", "processes", "processes_num", "should_exit"):
        assert hasattr(supervisor, name), changed(f"Multiprocess.{name}", where)
    assert supervisor.processes_num == 3, changed("Multiprocess.processes_num (config.workers)", where)
    assert callable(getattr(supervisor.should_exit, "is_set", None)), changed(
        "Multiprocess.should_exit (an Event)", where
    )


def test_multiprocess_calls_the_methods_supervisor_overrides() -> None:
    """uvicorn's loop reaches Supervisor's overrides by name: start, liveness, SIGHUP, SIGTTIN."""
    where = f"{SUPERVISOR} Supervisor"
    run = source(Multiprocess.run)
    assert "self.init_processes()" in run, changed("Multiprocess.run calling init_processes()", where)
    assert "self.keep_subprocess_alive()" in run, changed(
        "Multiprocess.run calling keep_subprocess_alive()", where
    )
    assert "self.restart_all()" in source(Multiprocess.handle_hup), changed(
        "Multiprocess.handle_hup calling restart_all()", where
    )
    assert 'f"handle_{' in source(Multiprocess.handle_signals), changed(
        "Multiprocess.handle_signals dispatching to handle_<signal>() (handle_ttin)", where
    )


def test_only_the_overridden_multiprocess_methods_start_workers() -> None:
    """Every uvicorn method that builds a `Process` is overridden: every worker dies with the supervisor."""
    for name, member in vars(Multiprocess).items():
        if callable(member) and "Process(" in source(member):
            assert name in vars(Supervisor), changed(
                f"Multiprocess.{name} (it starts a plain uvicorn Process)",
                f"{SUPERVISOR} Supervisor.new_worker",
            )


# What lastro copied from uvicorn and adapted: a change upstream must be carried over by hand.
COPIED: dict[str, tuple[Callable[..., Any], str, str]] = {
    "Multiprocess.init_processes": (
        Multiprocess.init_processes,
        "1b5e6edc40932ee5",
        "Supervisor.init_processes",
    ),
    "Multiprocess.restart_all": (Multiprocess.restart_all, "b1602a5448c5d7c3", "Supervisor.restart_all"),
    "Multiprocess.run": (Multiprocess.run, "865c63f44d83ffd9", "Supervisor.run"),
    # Its signal handlers, which Supervisor replaces with ones that also wake the loop.
    "Multiprocess.__init__": (Multiprocess.__init__, "0b8f26543b3ebc9d", "Supervisor._queue_signal"),
    "Multiprocess.handle_ttin": (Multiprocess.handle_ttin, "26dd5642138de5b4", "Supervisor.handle_ttin"),
    "Multiprocess.keep_subprocess_alive": (
        Multiprocess.keep_subprocess_alive,
        "bcacc6560f539a3c",
        "Supervisor.keep_subprocess_alive",
    ),
    "Process._healthcheck": (Process._healthcheck, "efefa5f56a744050", "worker_answers"),
    "Process.__init__": (Process.__init__, "da98e777d773d7a3", "WorkerProcess.__init__"),
    "_subprocess.get_subprocess": (
        _subprocess.get_subprocess,
        "17754ca9ce020aed",
        "WorkerProcess and _stdin_fileno",
    ),
}


@pytest.mark.parametrize("name", COPIED)
def test_the_uvicorn_code_lastro_adapted_is_unchanged(name: str) -> None:
    """lastro's version of these uvicorn functions was written from their code in CHECKED_AGAINST."""
    function, digest, ours = COPIED[name]
    assert shape(function) == digest, changed(
        f"the code of {name} (compare with lastro's {ours}, carry the change over, then update its digest)",
        f"{SUPERVISOR} {ours}",
    )


# The HTTP protocols: uvicorn.protocols.http.{h11_impl,httptools_impl} and uvicorn.server.


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_constructor(protocol: type[asyncio.Protocol]) -> None:
    """lastro's protocols call `super().__init__(config, server_state, app_state, _loop)` positionally."""
    assert parameters(protocol.__init__) == ["config", "server_state", "app_state", "_loop"], changed(
        f"{protocol.__name__}.__init__(config, server_state, app_state, _loop)",
        f"{PROTOCOL} _BoundedConnection.__init__",
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_methods_lastro_overrides(protocol: type[asyncio.Protocol]) -> None:
    """The methods _BoundedConnection overrides exist on both protocols, with no argument but `exc`."""
    for name in ("connection_made", "data_received", "connection_lost", "on_response_complete", "shutdown"):
        assert callable(getattr(protocol, name, None)), changed(f"{protocol.__name__}.{name}", PROTOCOL)
    for name in ("on_response_complete", "shutdown", "timeout_keep_alive_handler"):
        assert parameters(getattr(protocol, name)) == [], changed(f"{protocol.__name__}.{name}()", PROTOCOL)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_calls_the_overrides_by_name(protocol: type[asyncio.Protocol]) -> None:
    """uvicorn reaches lastro's overrides through `self.`: the response hook, keep-alive timer, 503 check."""
    module = inspect.getsource(inspect.getmodule(protocol))  # type: ignore[arg-type]
    for needle, what in [
        ("on_response=self.on_response_complete", "the cycle's on_response hook"),
        ("self.timeout_keep_alive_handler", "the keep-alive timer's callback"),
        ("self.limit_concurrency is not None", "the 503 check lastro turns off (limit_concurrency = None)"),
    ]:
        assert needle in module, changed(f"{protocol.__module__}: {what}", f"{PROTOCOL} _BoundedConnection")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_request_the_parser_refuses_reaches_send_400_response_in_its_except(
    protocol: type[asyncio.Protocol],
) -> None:
    """uvicorn answers an unparsable request through `self.send_400_response(msg)`, called in the `except`
    of the parser's error, where lastro reads the error (h11's 431 hint) to answer problem+json."""
    assert parameters(protocol.send_400_response) == ["msg"], changed(  # type: ignore[attr-defined]
        f"{protocol.__name__}.send_400_response(msg)", f"{PROTOCOL} _BoundedConnection.send_400_response"
    )
    module = inspect.getsource(inspect.getmodule(protocol))  # type: ignore[arg-type]
    handler = re.search(r"except (h11\.RemoteProtocolError|httptools\.HttpParserError):\n(.*\n){3}", module)
    where = f"{PROTOCOL} _BoundedConnection.send_400_response"
    assert handler is not None, changed(f"{protocol.__module__}: the parser error's handler", where)
    assert "self.send_400_response(msg)" in handler.group(0), changed(
        f"{protocol.__module__}: the parser error's handler calling send_400_response", where
    )


def test_h11_refuses_a_head_over_its_bound_with_a_431_hint() -> None:
    """h11 raises RemoteProtocolError(error_status_hint=431) for a head over max_incomplete_event_size."""
    import h11

    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=64)
    connection.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100)
    with pytest.raises(h11.RemoteProtocolError) as refused:
        connection.next_event()
    assert refused.value.error_status_hint == 431, changed("h11's 431 hint", f"{PROTOCOL} send_400_response")


def test_server_shuts_down_each_connection() -> None:
    """At shutdown uvicorn calls `shutdown()` on every connection in `server_state.connections`."""
    body = source(Server.shutdown)
    where = f"{PROTOCOL} _BoundedConnection.shutdown (the drain)"
    assert "self.server_state.connections" in body, changed("Server.shutdown walking the connections", where)
    assert "connection.shutdown()" in body, changed("Server.shutdown calling connection.shutdown()", where)


def test_server_state_is_shared_and_weakly_referenceable() -> None:
    """ServerState carries the connection and task sets, and keys lastro's per-worker WeakKeyDictionaries."""
    state = ServerState()
    for name in ("connections", "tasks"):
        assert isinstance(getattr(state, name, None), set), changed(
            f"ServerState.{name}", f"{PROTOCOL} _ConnectionLimit"
        )
    assert weakref.ref(state)() is state, changed(
        "ServerState (weak references)", f"{PROTOCOL} _LIMITED and _LOGS"
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_attributes_before_a_connection(protocol: type[asyncio.Protocol]) -> None:
    """Right after construction: what `_BoundedConnection.__init__` reads, and no request cycle yet."""
    where = f"{PROTOCOL} _BoundedConnection.__init__"
    name = protocol.__name__
    config = Config(hello, log_config=None, limit_concurrency=8)
    config.load()
    state = ServerState()
    loop = asyncio.new_event_loop()
    try:
        connection: Any = protocol(config, state, {}, loop)  # type: ignore[call-arg]
    finally:
        loop.close()
    for attribute, expected in [
        ("app", object),
        ("config", Config),
        ("loop", asyncio.AbstractEventLoop),
        ("server_state", ServerState),
    ]:
        assert isinstance(getattr(connection, attribute, None), expected), changed(
            f"{name}.{attribute}", where
        )
    assert connection.limit_concurrency == 8, changed(f"{name}.limit_concurrency (from the config)", where)
    assert connection.connections is state.connections, changed(f"{name}.connections", where)
    assert connection.tasks is state.tasks, changed(f"{name}.tasks", where)
    assert connection.cycle is None, changed(f"{name}.cycle (None until a request)", f"{PROTOCOL} _idle")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_attributes_over_a_real_connection(protocol: type[asyncio.Protocol]) -> None:
    """One request on a loopback connection: the transport, flow control, cycle and keep-alive timer."""
    where = f"{PROTOCOL} _BoundedConnection"
    name = protocol.__name__

    async def exchange() -> tuple[Any, object]:
        loop = asyncio.get_running_loop()
        config = Config(hello, log_config=None, access_log=False, timeout_keep_alive=5)
        config.load()
        state = ServerState()
        server = await loop.create_server(
            lambda: protocol(config, state, {}, loop),  # type: ignore[call-arg]
            "127.0.0.1",
            0,
        )
        try:
            async with asyncio.timeout(10):
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", server.sockets[0].getsockname()[1]
                )
                writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                answer = await reader.readuntil(b"\r\n\r\nok")
                (connection,) = state.connections
                keep_alive_timer = connection.timeout_keep_alive_task  # while the connection is open
                writer.close()
                await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()
        assert answer.startswith(b"HTTP/1.1 200")
        return connection, keep_alive_timer

    connection, keep_alive_timer = asyncio.run(exchange())
    assert isinstance(connection.transport, asyncio.Transport), changed(f"{name}.transport", where)
    assert isinstance(connection.flow, FlowControl), changed(f"{name}.flow", where)
    assert callable(getattr(connection.flow, "resume_reading", None)), changed(
        "FlowControl.resume_reading()", f"{where}._close_lingering"
    )
    assert connection.cycle.response_complete is True, changed(f"{name}.cycle.response_complete", where)
    assert connection.cycle.keep_alive is True, changed(f"{name}.cycle.keep_alive", f"{where}.data_received")
    assert isinstance(keep_alive_timer, asyncio.TimerHandle), changed(
        f"{name}.timeout_keep_alive_task (set once a response completes)", f"{where}._close_lingering"
    )


def test_httptools_starts_every_cycle_through_start_asgi_task() -> None:
    """`HttpToolsProtocol._start_asgi_task(cycle, app)` starts each request, pipelined or not: lastro gives
    the cycle its one-write transport there."""
    protocol = httptools_impl.HttpToolsProtocol
    where = f"{PROTOCOL} _DrainingHttpTools._start_asgi_task"
    assert parameters(protocol._start_asgi_task) == ["cycle", "app"], changed(  # type: ignore[attr-defined]
        "HttpToolsProtocol._start_asgi_task(cycle, app)", where
    )
    for method in (protocol.on_headers_complete, protocol.on_response_complete):  # type: ignore[attr-defined]
        assert "self._start_asgi_task(" in source(method), changed(
            f"HttpToolsProtocol.{method.__name__} starting the cycle through _start_asgi_task", where
        )


def test_the_httptools_cycle_writes_as_head_with_body_expects() -> None:
    """The cycle uses only `write`, `close` and `is_closing` of `self.transport`, and its `send` sets
    `response_started` and `chunked_encoding` before writing the head (digest of CHECKED_AGAINST's code)."""
    cycle = httptools_impl.RequestResponseCycle
    used = set(re.findall(r"self\.transport\.(\w+)", inspect.getsource(cycle)))
    assert used <= {"write", "close", "is_closing"}, changed(f"the cycle's transport calls ({used})", WHOLE)
    assert shape(cycle.send) == "e4355b337add5d7c", changed(
        "RequestResponseCycle.send (check the order HeadWithBody.write relies on, then update its digest)",
        WHOLE,
    )


def test_the_httptools_cycle_is_weakly_referenceable() -> None:
    """`HeadWithBody` holds its cycle by a weak reference: the cycle must keep `__weakref__`."""
    cycle = httptools_impl.RequestResponseCycle
    assert "__weakref__" in dir(cycle), changed("RequestResponseCycle (weak references)", WHOLE)


def test_config_takes_every_option_lastro_passes() -> None:
    """`uvicorn.Config` keeps each keyword `uvicorn_config` passes, and `header_timeout` rides along on it."""
    options = set(parameters(Config.__init__))
    for name in (
        "app",
        "factory",
        "host",
        "port",
        "workers",
        "loop",
        "http",
        "log_config",
        "access_log",
        "server_header",
        "timeout_keep_alive",
        "timeout_graceful_shutdown",
        "timeout_worker_healthcheck",
        "limit_concurrency",
        "limit_max_requests",
        "limit_max_requests_jitter",
        "h11_max_incomplete_event_size",
    ):
        assert name in options, changed(f"uvicorn.Config({name}=...)", f"{RUNNER} uvicorn_config")
    for name in ("load", "bind_socket"):
        assert callable(getattr(Config, name, None)), changed(f"Config.{name}()", RUNNER)


def test_config_loads_lastros_protocol_from_its_import_path() -> None:
    """`Config(http="module:Class")` imports lastro's protocol class in the worker."""
    config = Config(hello, http=protocol_path(), log_config=None)
    config.load()
    expected = DrainingHttpToolsProtocol or DrainingH11Protocol
    assert config.http_protocol_class is expected, changed(
        "Config(http='module:Class')", f"{RUNNER} protocol_path"
    )
