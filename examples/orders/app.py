"""The orders service application factory: `lastro serve examples.orders.app:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

import lastro
from examples.orders.routes import router


def create_app(settings: lastro.Settings | None = None) -> FastAPI:
    settings = settings or lastro.get_settings(SERVICE_NAME="orders")
    app = lastro.create_app(settings)
    app.include_router(router)
    return app
