"""HTTP routes for generalized reports (thin)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from concord import i18n
from concord.access.model import Principal
from concord.audit import service as audit
from concord.errors import FaultLocation, InvalidInput
from concord.orgs import validate
from concord.reports import render, service
from concord.reports.model import StoredReport
from concord.web.deps import Limit, RequestBody, decode_cursor, get_db, next_cursor, user, writer

router = APIRouter(tags=["reports"])
FormatQuery = Annotated[
    str | None,
    Query(alias="format", description="json (default), html or csv", pattern="^(json|html|csv)$"),
]
LanguageQuery = Annotated[
    str | None, Query(description="en or ru (HTML only; default: your language)")
]


class ReportMeta(BaseModel):
    id: int
    period: str
    scope: str
    tlp: str
    created_at: datetime
    format: str


class ReportOut(ReportMeta):
    report: dict[str, Any]


class ReportPage(BaseModel):
    items: list[ReportMeta]
    next_cursor: str | None


class ReportCreate(RequestBody):
    period: str = Field(description="2024-07-15, 2024-W28, 2024-07 or 2024-07-01..2024-07-10")
    scope: str = Field(default=service.NETWORK, description="network or a country code")
    format: str = Field(default="json", pattern="^(json|html|csv)$")
    language: str | None = None


def _meta(row: StoredReport) -> dict[str, Any]:
    return {
        "id": row.id,
        "period": row.period,
        "scope": row.scope,
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
    if fmt == "json":
        body = ReportOut(**_meta(row), report=json.loads(row.content))
        return Response(body.model_dump_json(), status, headers, "application/json")
    content = render.render(service.load(row), fmt, language)
    name = f"concord-report-{row.scope}-{row.period}.{fmt}".replace("..", "_")
    headers["Content-Disposition"] = f'inline; filename="{name}"'
    return Response(content, status, headers, render.MEDIA_TYPES[fmt])


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
    state's reports for its national body (and the centre, up to TLP:AMBER)."""
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
    status_code=201,
    response_model=ReportOut,
    responses={201: {"content": {"text/html": {}, "text/csv": {}}}},
)
def create_report(
    body: ReportCreate, p: Principal = Depends(writer), session: Session = Depends(get_db)
) -> Any:
    """Build a report now (from the data as it is) and store it; answered in `format`."""
    language = _language(p, body.language)  # refused before anything is built
    row, _report = service.create_report(session, p, body.period, body.scope)
    return _answer(row, body.format, language, status=201)
