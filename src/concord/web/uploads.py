"""Reading an uploaded file for any route: a multipart `file` field or the raw request body,
bounded by the configured limit (413 above it), never empty."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, UploadFile

from concord.config import get_settings
from concord.errors import ConcordError, FaultLocation, InvalidInput


@dataclass(frozen=True)
class Upload:
    data: bytes
    name: str
    content_type: str  # of a raw body, lower-case without parameters; "" for a form file


def too_large(limit: int) -> ConcordError:
    return ConcordError(f"the upload exceeds the limit of {limit} bytes", 413, "Payload too large")


async def read_upload(
    request: Request | None, file: UploadFile | None, *, missing: str = "choose a file"
) -> Upload:
    """The form file if one was sent, else (when `request` is given) the raw body, streamed
    so that an oversized body is refused without being held in memory."""
    limit = get_settings().max_upload_bytes
    form_sent = request is not None and request.headers.get("content-type", "").lower().startswith(
        "multipart/form-data"
    )
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
