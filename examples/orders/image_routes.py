"""Order images' routes: checked by content, stored atomically off the event loop, served back.

The file is written before its row and removed after it (see `lastro.files`), so no row ever points at a
missing file.
"""

from __future__ import annotations

import base64
from typing import Annotated

import anyio
from fastapi import APIRouter, File, HTTPException, Request, Response, UploadFile
from fastapi.responses import FileResponse

import lastro
from examples.orders import images, queries
from examples.orders.auth import Caller, Principal
from examples.orders.models import ImageBase64In, ImageOut
from examples.orders.settings import OrdersSettings
from lastro.files import sniff_image

__all__ = ["router"]

router = APIRouter(prefix="/api/orders/{order_id}/images", tags=["images"])
logger = lastro.get_logger("orders.images")

SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
IMAGE = {
    "description": "the image",
    "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in SUFFIXES},
}


def _store(request: Request) -> lastro.FileStore:
    store: lastro.FileStore = request.app.state.images
    return store


def _max_bytes(request: Request) -> int:
    settings: OrdersSettings = request.app.state.lastro.settings
    return settings.IMAGE_MAX_BYTES


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the image is larger than {limit} bytes (IMAGE_MAX_BYTES)")


def _out(image: images.StoredImage) -> ImageOut:
    url = f"/api/orders/{image.order_id}/images/{image.id}"
    return ImageOut(id=image.id, content_type=image.content_type, size=image.size, url=url)


@router.post("", status_code=201, responses=lastro.problems(401, 404, 415))
async def upload_image(
    order_id: int,
    file: Annotated[UploadFile, File()],
    request: Request,
    response: Response,
    caller: Caller,
    unit: lastro.WriteUnit,
) -> ImageOut:
    """Attach an image sent as multipart form data (field `file`): PNG, JPEG or WebP."""
    limit = _max_bytes(request)
    data = await file.read(limit + 1)
    return await _attach(request, response, unit, caller, order_id, data)


@router.post("/base64", status_code=201, responses=lastro.problems(401, 404, 415))
async def upload_image_base64(
    order_id: int,
    body: ImageBase64In,
    request: Request,
    response: Response,
    caller: Caller,
    unit: lastro.WriteUnit,
) -> ImageOut:
    """Attach an image sent as JSON `{"filename", "content_base64"}`."""
    limit = _max_bytes(request)
    if len(body.content_base64) > 4 * (limit // 3 + 1) + 4:  # over the limit whatever it decodes to
        raise _too_large(limit)
    try:
        data = base64.b64decode(body.content_base64, validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        raise HTTPException(422, "content_base64 is not valid base64") from None
    return await _attach(request, response, unit, caller, order_id, data)


async def _attach(
    request: Request,
    response: Response,
    unit: lastro.UnitOfWork,
    caller: Principal,
    order_id: int,
    data: bytes,
) -> ImageOut:
    limit = _max_bytes(request)
    if len(data) > limit:
        raise _too_large(limit)
    content_type = sniff_image(data)
    if content_type is None:
        raise HTTPException(415, "the upload is not a PNG, JPEG or WebP image")
    # 404 before the file is written
    await unit.transactions.read(queries.require_order, caller.tenant_id, order_id)
    store = _store(request)
    name = store.new_name(SUFFIXES[content_type])
    await store.save(name, data)
    try:
        image = await unit.run(images.add_image, caller.tenant_id, order_id, content_type, len(data), name)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await store.delete(name)
        raise
    document = _out(image)
    response.headers["Location"] = document.url
    return document


@router.get("", responses=lastro.problems(401, 404))
async def list_images(order_id: int, caller: Caller, unit: lastro.ReadUnit) -> list[ImageOut]:
    stored = await unit.run(images.list_images, caller.tenant_id, order_id)
    return [_out(image) for image in stored]


@router.get(
    "/{image_id:int}", response_class=FileResponse, responses={200: IMAGE, **lastro.problems(401, 404)}
)
async def get_image(
    order_id: int, image_id: int, request: Request, caller: Caller, unit: lastro.ReadUnit
) -> Response:
    """The image itself, with its content type."""
    image = await unit.run(images.get_image, caller.tenant_id, order_id, image_id)
    store = _store(request)
    if not await store.exists(image.storage_name):
        logger.error("image file missing", image_id=image.id, storage_name=image.storage_name)
        raise HTTPException(404, f"image {image_id} of order {order_id} not found")
    return FileResponse(store.path(image.storage_name), media_type=image.content_type)


@router.delete("/{image_id:int}", status_code=204, responses=lastro.problems(401, 404))
async def delete_image(
    order_id: int, image_id: int, request: Request, caller: Caller, unit: lastro.WriteUnit
) -> Response:
    name = await unit.run(images.delete_image, caller.tenant_id, order_id, image_id)
    await _store(request).delete(name)
    return Response(status_code=204)
