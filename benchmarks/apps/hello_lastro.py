"""FastAPI "hello world" inside `lastro.create_app`: the price of lastro's middleware stack.

    lastro serve benchmarks.apps.hello_lastro:create_app --factory

The same endpoint as `hello_fastapi.py`, with everything lastro installs around it: request id, access log
(one line per request at LOG_LEVEL=info), in-flight cap and loop-lag shedding, body limit, server errors,
health routes, and the lifecycle that opens `DATABASE_URL`.
"""

from __future__ import annotations

from fastapi import FastAPI

import lastro


def create_app() -> FastAPI:
    app = lastro.create_app(lastro.get_settings())

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"message": "hello"}

    return app
