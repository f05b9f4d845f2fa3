"""Reading an uploaded file for any route: a multipart `file` field or the raw request body,
bounded by the configured limit (413 above it), never empty."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, UploadFile
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from concord.config import get_settings
from concord.errors import ConcordError, FaultLocation, InvalidInput

# Room above the upload limit for a form's boundaries and other fields.
FORM_ROOM = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    data: bytes
    name: str
    content_type: str  # of a raw body, lower-case without parameters; "" for a form file


def too_large(limit: int) -> ConcordError:
    return ConcordError(_too_large_text(limit), 413, "Payload too large")


def _too_large_text(limit: int) -> str:
    if limit >= 1 << 20:
        return f"the upload exceeds the limit of {limit / (1 << 20):g} MiB ({limit} bytes)"
    return f"the upload exceeds the limit of {limit} bytes"


class BodyLimit:
    """Refuses a request body past the upload limit as it arrives.

    A multipart form is parsed, and its file spooled to disk, before any route or token
    check sees the request: without this, a client could make the server take in any
    amount before the limit is checked. A declared Content-Length above the limit is
    refused before a byte is read. The refusal is an HTTPException raised where the body
    is read, so the route's own handlers answer it (problem+json, or a page)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = get_settings().max_upload_bytes
        allowed = limit + FORM_ROOM
        declared = Headers(scope=scope).get("content-length", "")
        oversized = declared.isdigit() and int(declared) > allowed
        received = 0

        async def bounded() -> Message:
            nonlocal received
            if oversized:
                raise HTTPException(413, _too_large_text(limit))
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > allowed:
                    raise HTTPException(413, _too_large_text(limit))
            return message

        await self.app(scope, bounded, send)


class RawApiBodies:
    """An API request labelled as an urlencoded form carries a raw body: that is how curl
    sends `--data-binary @file` unless told otherwise, and no API route takes a form. Left
    as it is, the body would be parsed as form fields and lost before the route reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            headers = scope["headers"]
            if any(k == b"content-type" and v.lower().startswith(FORM_TYPE) for k, v in headers):
                scope = dict(scope)
                scope["headers"] = [
                    (k, b"application/octet-stream") if k == b"content-type" else (k, v)
                    for k, v in headers
                ]
        await self.app(scope, receive, send)


FORM_TYPE = b"application/x-www-form-urlencoded"


async def _only_one_file(request: Request) -> None:
    """An API form holds one part, `file`: a `tlp` or `format` sent as a form field would be
    ignored in silence (they are query parameters), a report kept at a looser TLP than
    meant; a second file would be dropped."""
    form = await request.form()  # parsed once already, for the route's `file`
    if "file" not in form:
        return  # told below where the file goes, which says what matters first
    for name in form:
        if name != "file":
            raise InvalidInput(
                f"unknown form field {name!r}: the form holds only 'file'; give the other "
                f"settings as query parameters (?{name}=...)",
                FaultLocation(pointer=f"/body/{name}"),
            )
    if len(form.getlist("file")) > 1:
        raise InvalidInput("send one file per request", FaultLocation(pointer="/body/file"))


async def read_upload(
    request: Request | None, file: UploadFile | None, *, missing: str = "choose a file"
) -> Upload:
    """The form file if one was sent, else (when `request` is given) the raw body, streamed
    so that an oversized body is refused without being held in memory."""
    limit = get_settings().max_upload_bytes
    form_sent = request is not None and request.headers.get("content-type", "").lower().startswith(
        "multipart/form-data"
    )
    if request is not None and form_sent:
        await _only_one_file(request)
    if file is not None and file.filename:
        data = await file.read(limit + 1)
        name, content_type = file.filename, ""
    elif form_sent:
        # A form whose body was read already (for its fields) without a usable file part:
        # there is no raw body to fall back on.
        raise InvalidInput(
            f"{missing}: send it in the form field 'file'", FaultLocation(field="file")
        )
    elif request is not None:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + 65536:
            raise too_large(limit)
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise too_large(limit)
            chunks.append(chunk)
        data = b"".join(chunks)
        name = request.headers.get("x-filename") or "body"
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    else:
        raise InvalidInput(missing, FaultLocation(field="file"))
    if len(data) > limit:
        raise too_large(limit)
    if not data.strip():
        raise InvalidInput("the upload is empty", FaultLocation(source=name))
    return Upload(data, name, content_type)
