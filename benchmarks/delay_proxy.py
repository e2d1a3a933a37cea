"""A TCP proxy that holds every chunk for a while each way: a database server as if it were farther away.

    .venv/bin/python -m benchmarks.delay_proxy --listen 127.0.0.1:6432 --to 127.0.0.1:5432 --delay-ms 0.5
    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:6432/test \
        .venv/bin/python -m benchmarks.ab one=. two=. --postgres

`tc qdisc ... netem delay` does this in the kernel where the module exists (not in every container). This
proxy runs on the same cores as what it measures, and asyncio's timers wake at millisecond granularity, so a
delay is at least about 1 ms: read the round trip it gives off `--probe`, which times `SELECT 1` through it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import time
from collections.abc import Sequence

logger = logging.getLogger("benchmarks.delay_proxy")


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy `reader` to `writer`, each chunk sent `delay` seconds after it arrived, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(send())
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, chunk))
    queue.put_nowait((0.0, b""))
    with contextlib.suppress(ConnectionError):
        await sender


async def serve(listen: tuple[str, int], to: tuple[str, int], delay: float) -> None:
    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*to)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pump(reader, upstream_writer, delay),
            _pump(upstream_reader, writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(connect, *listen)
    logger.info("delaying %s -> %s by %.2f ms each way", listen, to, delay * 1000)
    async with server:
        await server.serve_forever()


def probe(url: str, count: int = 200) -> float:
    """The median milliseconds of `SELECT 1` on one connection to `url`."""
    import psycopg

    with psycopg.connect(url) as connection:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.delay_proxy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 6432))
    parser.add_argument("--to", type=_address, default=("127.0.0.1", 5432))
    parser.add_argument("--delay-ms", type=float, default=0.5, help="each way")
    parser.add_argument("--probe", metavar="URL", help="time SELECT 1 through URL and exit")
    parser.add_argument("--probe-count", type=int, default=200, help="statements the probe times")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.probe:
        logger.info("SELECT 1: %.3f ms median", probe(args.probe, args.probe_count))
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.to, args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
