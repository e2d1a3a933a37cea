"""MAX_MULTIPART_PARTS and MAX_MULTIPART_FILES bound every form FastAPI parses: past them, 400 problem+json.

lastro sets the application's `form_limits`, which FastAPI hands to starlette's form parsers; the first
test pins that FastAPI contract on a bare application.
"""

from __future__ import annotations

import time
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, File, Form, UploadFile

from lastro.app import create_app
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.settings import get_settings

pytestmark = pytest.mark.anyio

Fields = list[tuple[str, str]]
Files = list[tuple[str, tuple[str, bytes, str]]]


def form_routes(app: FastAPI) -> FastAPI:
    @app.post("/profile")
    async def profile(name: Annotated[str, Form()]) -> dict[str, str]:
        return {"name": name}

    @app.post("/upload")
    async def upload(files: Annotated[list[UploadFile], File()]) -> dict[str, int]:
        return {"files": len(files)}

    return app


def make_app(sqlite_url: str, **settings: object) -> FastAPI:
    return form_routes(create_app(get_settings(DATABASE_URL=sqlite_url, **settings)))


def fields(count: int) -> Fields:
    return [("name", "ada")] + [(f"extra{number}", "x") for number in range(count - 1)]


def files(count: int) -> Files:
    return [("files", (f"f{number}.txt", b"data", "text/plain")) for number in range(count)]


async def post(app: FastAPI, path: str, **content: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path, **content)  # type: ignore[arg-type]


def is_problem_400(response: httpx.Response) -> bool:
    return response.status_code == 400 and response.headers["content-type"] == PROBLEM_CONTENT_TYPE


async def test_fastapi_applies_the_applications_form_limits() -> None:
    """The FastAPI contract lastro rests on: `app.router.form_limits` bounds a parsed multipart form."""
    app = form_routes(FastAPI())
    app.router.form_limits = {"max_fields": 1}
    response = await post(app, "/profile", files=[("name", (None, b"ada")), ("more", (None, b"x"))])
    assert response.status_code == 400
    assert response.json() == {"detail": "Too many fields. Maximum number of fields is 1."}


async def test_a_multipart_form_within_the_limit_is_served(sqlite_url: str) -> None:
    """MAX_MULTIPART_PARTS fields in one multipart body reach the route."""
    app = make_app(sqlite_url, MAX_MULTIPART_PARTS=5)
    multipart = [(name, (None, value.encode())) for name, value in fields(5)]
    response = await post(app, "/profile", files=multipart)
    assert (response.status_code, response.json()) == (200, {"name": "ada"})


async def test_a_multipart_form_over_the_parts_gets_400_problem_json(sqlite_url: str) -> None:
    """One field more than MAX_MULTIPART_PARTS: 400 problem+json naming the maximum."""
    app = make_app(sqlite_url, MAX_MULTIPART_PARTS=5)
    multipart = [(name, (None, value.encode())) for name, value in fields(6)]
    response = await post(app, "/profile", files=multipart)
    assert is_problem_400(response)
    assert response.json()["detail"] == "Too many fields. Maximum number of fields is 5."


async def test_an_urlencoded_form_over_the_parts_gets_400(sqlite_url: str) -> None:
    """The same bound holds for an application/x-www-form-urlencoded body."""
    response = await post(make_app(sqlite_url, MAX_MULTIPART_PARTS=5), "/profile", data=dict(fields(6)))
    assert is_problem_400(response)


async def test_files_within_the_limit_are_served(sqlite_url: str) -> None:
    """MAX_MULTIPART_FILES files reach the route."""
    response = await post(make_app(sqlite_url, MAX_MULTIPART_FILES=3), "/upload", files=files(3))
    assert (response.status_code, response.json()) == (200, {"files": 3})


async def test_one_file_too_many_gets_400_problem_json(sqlite_url: str) -> None:
    """One file more than MAX_MULTIPART_FILES: 400 problem+json naming the maximum."""
    response = await post(make_app(sqlite_url, MAX_MULTIPART_FILES=3), "/upload", files=files(4))
    assert is_problem_400(response)
    assert response.json()["detail"] == "Too many files. Maximum number of files is 3."


async def test_ten_thousand_parts_are_refused_fast(sqlite_url: str) -> None:
    """A body of 10,000 parts under the default limits is refused quickly, not parsed to its end."""
    boundary = "lastro-boundary"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'
    body = (part * 10_000 + f"--{boundary}--\r\n").encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    started = time.perf_counter()
    response = await post(make_app(sqlite_url), "/profile", content=body, headers=headers)
    assert time.perf_counter() - started < 1.0
    assert is_problem_400(response)
    assert response.json()["detail"] == "Too many fields. Maximum number of fields is 100."


async def test_a_routes_own_form_limits_still_override(sqlite_url: str) -> None:
    """A route declared with `form_limits` keeps them: the settings are the application's default."""
    app = create_app(get_settings(DATABASE_URL=sqlite_url, MAX_MULTIPART_FILES=1))

    @app.post("/bulk", form_limits={"max_files": 3})
    async def bulk(files: Annotated[list[UploadFile], File()]) -> dict[str, int]:
        return {"files": len(files)}

    response = await post(app, "/bulk", files=files(3))
    assert (response.status_code, response.json()) == (200, {"files": 3})
