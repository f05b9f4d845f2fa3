"""HTTP routes for intake (thin): upload a report, get its receipt."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import Principal
from concord.config import get_settings
from concord.db import session_factory
from concord.errors import ConcordError, FaultLocation, InvalidInput, NotFound
from concord.events.model import Submission
from concord.intake import service
from concord.web.deps import get_db, user, writer

router = APIRouter(tags=["intake"])


class ReceiptError(BaseModel):
    source: str | None = None
    line: int | None = None
    pointer: str | None = None
    field: str | None = None
    reason: str


class ReceiptOut(BaseModel):
    id: int
    filename: str
    format: str
    tlp: str
    status: str
    accepted: int
    duplicates: int
    rejected: int
    errors: list[ReceiptError]
    note: str


async def _upload(request: Request, file: UploadFile | None) -> tuple[bytes, str]:
    limit = get_settings().max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 65536:
        raise ConcordError(
            f"the upload exceeds the limit of {limit} bytes", 413, "Payload too large"
        )
    if file is not None:
        data = await file.read(limit + 1)
        name = file.filename or "upload"
    else:
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise ConcordError(
                    f"the upload exceeds the limit of {limit} bytes", 413, "Payload too large"
                )
            chunks.append(chunk)
        data = b"".join(chunks)
        name = request.headers.get("x-filename") or "body"
    if len(data) > limit:
        raise ConcordError(
            f"the upload exceeds the limit of {limit} bytes", 413, "Payload too large"
        )
    if not data.strip():
        raise InvalidInput("the upload is empty", FaultLocation(source=name))
    return data, name


@router.post(
    "/intake",
    response_model=ReceiptOut,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            }
        }
    },
)
async def submit(
    request: Request,
    fmt: str | None = Query(None, alias="format", description="declared format; else detected"),
    tlp: str | None = Query(None, description="TLP of the submission (default amber)"),
    as_org: str | None = Query(None, alias="as", description="report for this organisation"),
    file: UploadFile | None = File(None),
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> Any:
    """Submit a report (STIX 2.1, MISP event, Shadowserver or other CSV feed, IntelMQ JSON
    lines, abuse e-mail). The receipt counts accepted, duplicate and rejected records and
    lists each error with its location."""
    data, name = await _upload(request, file)
    # Ingest commits batch by batch in its own sessions: release this request's (it may
    # hold SQLite's write lock after noting the token's last use).
    session.commit()
    receipt = await run_in_threadpool(
        service.ingest,
        session_factory(),
        p,
        service.Source(io.BytesIO(data), name),
        fmt=fmt,
        tlp=tlp,
        as_org=as_org,
        channel="api",
    )
    return receipt.as_dict()


@router.get("/intake/{submission_id}", response_model=ReceiptOut)
def receipt(
    submission_id: int, p: Principal = Depends(user), session: Session = Depends(get_db)
) -> Any:
    import json

    sub = session.scalar(
        select(Submission).where(
            Submission.id == submission_id, policy.scope_filter(p, Submission.org_id)
        )
    )
    if sub is None:
        raise NotFound(f"no submission {submission_id}")
    return service.Receipt(
        sub.id,
        sub.filename,
        sub.format,
        sub.tlp,
        sub.accepted,
        sub.duplicates,
        sub.rejected,
        json.loads(sub.errors),
        sub.status,
    ).as_dict()
