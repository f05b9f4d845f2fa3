"""UI page for intake: upload a report and read its receipt (thin)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import TLP, Principal
from concord.config import get_settings
from concord.errors import ConcordError
from concord.intake import registry, service
from concord.intake.api import ingest_in_thread
from concord.orgs.model import Organization, OrgKind
from concord.web.deps import get_db
from concord.web.ui import check_csrf, page, ui_principal
from concord.web.uploads import read_upload, too_large

router = APIRouter(include_in_schema=False)


def _form(
    request: Request, session: Session, p: Principal, status: int = 200, **context: object
) -> HTMLResponse:
    recent = service.recent_submissions(session, p)
    # Those that report: the network has tens of thousands of owners, which do not.
    orgs = (
        list(
            session.scalars(
                select(Organization)
                .where(Organization.kind != OrgKind.OWNER.value)
                .order_by(Organization.slug)
            )
        )
        if p.is_centre
        else []
    )
    formats = sorted((r.name, r.description) for r in registry.readers().values())
    # detection finds these by their columns, but a file can be declared one of them
    profiles = sorted((r.name, r.description) for r in registry.builtin_profile_readers().values())
    context.setdefault("chosen", {"format": "", "tlp": "", "as": "", "share_owners": False})
    limit = get_settings().max_upload_bytes
    return page(
        request,
        session,
        "intake.html",
        status=status,
        # told in the browser before sending: refused by the server, the form's choices
        # would be lost with the body they came in
        max_bytes=limit,
        too_large=too_large(limit).message,
        formats=formats,
        profiles=profiles,
        levels=[t.value for t in TLP],
        orgs=orgs,
        recent=recent,
        may_submit=policy.may_submit(p),
        may_share=policy.staff_writer(p),
        **context,
    )


# The API answers a file it cannot read with HTTP's "Unsupported media type"; a person is told
# what is wrong with the file.
UNREADABLE_FILE = "This file cannot be read"


def _for_a_person(error: ConcordError) -> ConcordError:
    if isinstance(error, registry.UnsupportedFormat):
        return ConcordError(error.message, error.status, UNREADABLE_FILE, error.locations)
    return error


@router.get("/intake", response_class=HTMLResponse)
def intake_page(
    request: Request, p: Principal = Depends(ui_principal), session: Session = Depends(get_db)
) -> Response:
    return _form(request, session, p)


@router.post("/intake", response_class=HTMLResponse)
async def submit(
    request: Request,
    file: UploadFile | None = File(None),
    fmt: str = Form("", alias="format"),
    # empty: each record keeps the marking it carries, as from the console and the API
    tlp: str = Form(""),
    as_org: str = Form("", alias="as"),
    share_owners: bool = Form(False),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    # After an error (an expired form too) the form keeps what the user chose: never fall back
    # to a wider TLP. A browser cannot be given the file back; the page asks for it again.
    chosen = {"format": fmt, "tlp": tlp, "as": as_org, "share_owners": share_owners}
    try:
        check_csrf(request, csrf_token)
        upload = await read_upload(None, file, missing="choose a file to submit")
        session.commit()  # ingest writes in its own sessions; hold no lock meanwhile
        receipt = await ingest_in_thread(
            p,
            upload,
            fmt=fmt or None,
            tlp=tlp or None,
            as_org=as_org or None,
            channel="ui",
            share_owners=share_owners,
        )
    except ConcordError as exc:
        return _form(
            request, session, p, status=exc.status, error=_for_a_person(exc), chosen=chosen
        )
    return _form(request, session, p, receipt=receipt.as_dict(), chosen=chosen)


@router.get("/intake/{submission_id}", response_class=HTMLResponse)
def receipt_page(
    submission_id: int,
    request: Request,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    receipt = service.get_receipt(session, p, submission_id)
    return page(request, session, "receipt.html", receipt=receipt.as_dict())
