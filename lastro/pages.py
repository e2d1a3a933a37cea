"""`limit` for list routes: a query parameter capped by `MAX_PAGE_SIZE`, documented with its cap.

```python
@router.get("/orders")
async def list_orders(limit: lastro.PageLimit, unit: lastro.ReadUnit) -> OrderPage: ...

@router.get("/events")
async def list_events(limit: Annotated[int, lastro.page_limit(default=20)]) -> EventPage: ...
```

A client that leaves `limit` out gets the route's default (`PageLimit`: a full page of `MAX_PAGE_SIZE`,
and never more than it); one that asks for more than `MAX_PAGE_SIZE` gets 422 problem+json, as for any
other invalid parameter, rather than a shorter page it might take for the last one. `/openapi.json`
shows the cap as the parameter's `maximum`, from the settings the application runs with.
"""

# No `from __future__ import annotations`: FastAPI reads `limit_of`'s annotation, which names a local.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError

from lastro.state import ServiceState

__all__ = ["PageLimit", "install_page_limits", "page_limit"]

_MARK = "x-lastro-page-limit"  # in the parameter's schema until `_document` replaces it
_DESCRIPTION = "items in one page, at most {cap} (MAX_PAGE_SIZE)"


def page_limit(default: int | None = None) -> Any:
    """A `Depends` giving the page size a client asked for in `limit`; `default` (or `MAX_PAGE_SIZE`, if
    smaller or not given) when it asked for none."""
    if default is not None and default < 1:
        raise ValueError(f"page_limit's default must be 1 or more (got {default})")

    marked = Query(ge=1, json_schema_extra={_MARK: default or 0})  # 0: MAX_PAGE_SIZE

    async def limit_of(request: Request, limit: Annotated[int | None, marked] = None) -> int:
        state: ServiceState = request.app.state.lastro
        cap = state.settings.MAX_PAGE_SIZE
        if limit is None:
            return cap if default is None else min(default, cap)
        if limit > cap:
            error = {
                "type": "less_than_equal",
                "loc": ("query", "limit"),
                "msg": f"Input should be less than or equal to {cap} (MAX_PAGE_SIZE)",
                "input": limit,
                "ctx": {"le": cap},
            }
            raise RequestValidationError([error])
        return limit

    return Depends(limit_of)


PageLimit = Annotated[int, page_limit()]


def install_page_limits(app: FastAPI, cap: int) -> None:
    """Make `app.openapi()` show `cap` as the `maximum` of every `limit` a `page_limit` reads."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(generate(), cap)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(document: dict[str, Any], cap: int) -> dict[str, Any]:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else ():
                schema = parameter.get("schema", {})
                if _MARK not in schema:
                    continue
                default = min(schema[_MARK] or cap, cap)
                parameter["schema"] = {
                    "title": "Limit",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": cap,
                    "default": default,
                }
                parameter["description"] = _DESCRIPTION.format(cap=cap)
    return document
