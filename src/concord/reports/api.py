"""HTTP routes for generalized reports (thin)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from concord import i18n
from concord.access.model import Principal
from concord.audit import service as audit
from concord.errors import FaultLocation, InvalidInput
from concord.orgs import validate
from concord.reports import period as periods
from concord.reports import render, service, tasks
from concord.reports.model import ReportRequest, StoredReport
from concord.web.deps import (
    Limit,
    RequestBody,
    decode_cursor,
    get_db,
    next_cursor,
    read_by,
    user,
    writer,
)

router = APIRouter(tags=["reports"])


ReportFormat = Annotated[str, read_by(service.parse_format)]
FormatQuery = Annotated[
    str | None,
    read_by(service.parse_format),
    Query(alias="format", description="json (default), html or csv"),
]
LanguageQuery = Annotated[
    str | None, Query(description="en or ru (HTML only; default: your language)")
]


class ReportMeta(BaseModel):
    id: int
    period: str
    scope: str
    seen_by: str | None = Field(
        default=None,
        description="null: the scope's own report; centre: a state's report built for the "
        "centre, holding only what both the state's national body and the centre may see",
    )
    tlp: str
    created_at: datetime
    format: str


class ReportOut(ReportMeta):
    report: dict[str, Any]


class ReportPage(BaseModel):
    items: list[ReportMeta]
    next_cursor: str | None


class ReportCreate(RequestBody):
    period: Annotated[str, read_by(periods.parse, keep=True)] = Field(
        description="2024-07-15, 2024-W28, 2024-07 or 2024-07-01..2024-07-10"
    )
    scope: Annotated[str, read_by(service.parse_scope)] = Field(
        default=service.NETWORK, description="network or a country code"
    )
    format: ReportFormat = Field(
        default="json",
        description="with wait: the answer's format; without, json only (a stored report is "
        "read in any format with GET /api/v1/reports/{id}?format=)",
    )
    language: str | None = Field(
        default=None,
        description="with wait: the answer's language (en or ru; HTML only: JSON and CSV hold "
        "machine names)",
    )
    wait: bool = Field(
        default=False,
        description="true: build within this request and answer the report (201), for small "
        "periods; a large build can outlast a proxy's timeout. false: 202 and a request to "
        "follow (Location).",
    )


class ReportRequestOut(BaseModel):
    id: int
    period: str
    scope: str
    status: str = Field(description="queued, building, ready or failed")
    report_id: int | None = Field(description="the stored report, once ready")
    error: str | None = Field(description="why it failed")
    created_at: datetime
    finished_at: datetime | None


def _request_out(row: ReportRequest) -> ReportRequestOut:
    return ReportRequestOut.model_validate(row, from_attributes=True)


def _meta(row: StoredReport) -> dict[str, Any]:
    scope, seen_by = service.split_scope(row.scope)
    return {
        "id": row.id,
        "period": row.period,
        "scope": scope,
        "seen_by": seen_by,
        "tlp": row.tlp,
        "created_at": row.created_at,
        "format": row.format,
    }


def _language(p: Principal, requested: str | None) -> str:
    if requested:
        try:
            return validate.language(requested)
        except ValueError as exc:
            raise InvalidInput(str(exc), FaultLocation(field="language")) from None
    return p.language if p.language in i18n.LANGUAGES else i18n.DEFAULT


def _answer(row: StoredReport, fmt: str, language: str, status: int = 200) -> Response:
    headers = {"Location": f"/api/v1/reports/{row.id}"} if status == 201 else {}
    # the name a browser saves it under (the reports page's links download it)
    scope, seen_by = service.split_scope(row.scope)
    view = f"{scope}-{seen_by}" if seen_by else scope
    name = f"concord-report-{view}-{row.period}.{fmt}".replace("..", "_")
    headers["Content-Disposition"] = f'inline; filename="{name}"'
    if fmt == "json":
        body = ReportOut(**_meta(row), report=json.loads(row.content))
        return Response(body.model_dump_json(), status, headers, "application/json")
    content = render.render(service.load(row), fmt, language)
    return Response(content, status, headers, render.MEDIA_TYPES[fmt])


def _stored_as_json(body: ReportCreate) -> None:
    """A report built by a worker is stored, and read later in the format and language asked
    for then: a format or language given now would have no effect, so it is refused."""
    if body.format != "json":
        raise InvalidInput(
            "a report a worker builds is read in a format once it is ready: GET "
            f'/api/v1/reports/<report_id>?format={body.format} (or send "wait": true to have '
            "it now)",
            FaultLocation(pointer="/body/format"),
        )
    if body.language is not None:
        raise InvalidInput(
            "a report a worker builds is read in a language once it is ready: GET "
            f'/api/v1/reports/<report_id>?language={body.language} (or send "wait": true to '
            "have it now)",
            FaultLocation(pointer="/body/language"),
        )


@router.get("/reports", response_model=ReportPage)
def list_reports(
    scope: str | None = Query(None, description="network or a country code"),
    period: str | None = Query(None, description="a period label, e.g. 2024-07"),
    cursor: str | None = None,
    limit: Limit = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> Any:
    """Stored reports you may read, newest first: network reports for the centre, a
    state's reports for its national body (and the centre, up to TLP:AMBER). A state's report
    the centre asked for (`seen_by`: centre) holds what both may see and is the centre's."""
    rows = service.list_reports(
        session, p, scope=scope, period=period, after_id=decode_cursor(cursor), limit=limit
    )
    return {"items": [_meta(r) for r in rows], "next_cursor": next_cursor(rows, limit)}


@router.get(
    "/reports/{report_id}",
    response_model=ReportOut,
    responses={200: {"content": {"text/html": {}, "text/csv": {}}}},
)
def get_report(
    report_id: int,
    fmt: FormatQuery = None,
    language: LanguageQuery = None,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> Any:
    row = service.get_report(session, p, report_id)
    audit.record_reads(session, p, "report", [row])
    return _answer(row, fmt or "json", _language(p, language))


@router.post(
    "/reports",
    status_code=202,
    response_model=ReportRequestOut,
    responses={
        201: {"model": ReportOut, "content": {"text/html": {}, "text/csv": {}}},
    },
)
def create_report(
    body: ReportCreate, p: Principal = Depends(writer), session: Session = Depends(get_db)
) -> Any:
    """Build a report from the data as it is and store it. By default a worker builds it:
    202 with the request, to follow at its `Location` until `report_id` is set. With
    `wait`, built within this request and answered in `format` (201)."""
    language = _language(p, body.language)  # refused before anything is built
    if body.wait:
        session.commit()  # what resolving the token wrote: the build then holds no lock
        row, _report = service.create_report(session, p, body.period, body.scope)
        return _answer(row, body.format, language, status=201)
    _stored_as_json(body)
    req = service.request_report(session, p, body.period, body.scope)
    session.commit()  # the worker must find it
    tasks.queue_request(req.id)
    return JSONResponse(
        _request_out(req).model_dump(mode="json"),
        status_code=202,
        headers={"location": f"/api/v1/report-requests/{req.id}"},
    )


@router.get("/report-requests/{request_id}", response_model=ReportRequestOut)
def get_report_request(
    request_id: int, p: Principal = Depends(user), session: Session = Depends(get_db)
) -> ReportRequestOut:
    """A report you asked for: queued, building, ready (`report_id`) or failed (`error`)."""
    return _request_out(service.get_request(session, p, request_id))
