"""HTTP routes for intake (thin): upload a report, get its receipt."""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from concord.access.model import Principal
from concord.db import session_factory
from concord.intake import service
from concord.web.deps import get_db, user, writer
from concord.web.problems import problem
from concord.web.uploads import Upload, read_upload

router = APIRouter(tags=["intake"])

# How long a request cancelled by its server's stop waits for its intake to stop (after the
# batch it writes) before it is answered
STOP_WAIT_SECONDS = 10.0


async def ingest_in_thread(principal: Principal, upload: Upload, **options: Any) -> service.Receipt:
    """`service.ingest` of `upload` in a worker thread. When the server stops before it
    ends (a second Ctrl-C on `concord serve`: its requests are cancelled), the intake is
    told to stop after the batch it writes, which leaves the submission to go on where it
    stopped when sent again, and the request is answered 503 (`service.Stopped`) rather
    than dropped with a traceback."""
    stop, ended = threading.Event(), threading.Event()
    taken: list[service.Receipt] = []

    def work() -> service.Receipt:
        try:
            taken.append(
                service.ingest(
                    session_factory(),
                    principal,
                    service.Source(io.BytesIO(upload.data), upload.name),
                    stop=stop,
                    **options,
                )
            )
            return taken[0]
        finally:
            ended.set()

    try:
        return await run_in_threadpool(work)
    except asyncio.CancelledError:
        stop.set()
        _carry_on()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_WAIT_SECONDS
        while not ended.is_set() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if taken and taken[0].status == "done":
            return taken[0]  # it ended whole before the stop reached it
        raise service.Stopped() from None


def _carry_on() -> None:
    """Take back the cancellation of this request's task, that it may still answer."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


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
    tlp: str = Field(description="the declared TLP, or the one given to unmarked records")
    tlp_declared: bool = Field(
        True, description="false: each record kept its own TLP marking, `tlp` for unmarked ones"
    )
    status: str
    accepted: int
    duplicates: int
    rejected: int
    skipped: int = 0
    errors: list[ReceiptError]
    note: str
    shared: int = 0
    parts: list[ReceiptOut] = Field(
        [],
        description="a mail's attachments or an archive's files taken in as files of their "
        "own, with their receipts",
    )
    not_taken_in: int = Field(
        0,
        description="an archive's files that were not taken in (a nested archive, one of no "
        "known format), each named in `errors`: files, not records, so not counted as rejected",
    )
    skipped_files: list[str] = Field(
        [],
        description="hidden files of an archive or of a mail's attached archives (a name "
        "starting with a dot, the __MACOSX folder a Mac adds), skipped unread: a note, not a "
        "fault",
    )


@router.post(
    "/intake",
    response_model=ReceiptOut,
    responses={
        422: {
            "description": "No record could be taken in (each fault in `errors`, the stored "
            "receipt in `receipt`), or the request itself is at fault",
            "content": {"application/problem+json": {}},
        }
    },
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
    tlp: str | None = Query(
        None,
        description="TLP of the submission; without it each record keeps its own "
        "marking (a MISP tlp: tag, a STIX marking), else amber",
    ),
    as_org: str | None = Query(None, alias="as", description="report for this organisation"),
    share_owners: bool = Query(
        False, description="share each AMBER event with the owner of the resource it concerns"
    ),
    file: UploadFile | None = File(None),
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> Any:
    """Submit a report (STIX 2.1, MISP event, Shadowserver or other CSV feed, IntelMQ JSON
    lines, abuse e-mail) as the form field `file`, or as the request body named by an
    `X-Filename` header (a Shadowserver report is told by its file name). The receipt counts
    accepted, duplicate and rejected records and lists each error with its location."""
    upload = await read_upload(request, file)
    # Ingest commits batch by batch in its own sessions: release this request's (it may
    # hold SQLite's write lock after noting the token's last use).
    session.commit()
    receipt = await ingest_in_thread(
        p,
        upload,
        fmt=fmt,
        tlp=tlp,
        as_org=as_org,
        channel="api",
        share_owners=share_owners,
    )
    body = receipt.as_dict()
    if not receipt.took_nothing:
        return body
    return problem(
        422,
        "No record taken in",
        f"none of the records of {receipt.filename} could be taken in: each is in errors, "
        f"and the receipt ({receipt.id}) in receipt",
        request.url.path,
        errors=[{**error, "detail": error["reason"]} for error in receipt.errors],
        receipt=body,
    )


@router.get("/intake/{submission_id}", response_model=ReceiptOut)
def receipt(
    submission_id: int, p: Principal = Depends(user), session: Session = Depends(get_db)
) -> Any:
    return service.get_receipt(session, p, submission_id).as_dict()
