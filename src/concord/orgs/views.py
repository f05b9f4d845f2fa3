"""UI pages for organisations, contacts, assets and the owner lookup (thin: parse, call, render).

Visibility is decided by the services and the access policy only; these views never filter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import TLP, Principal
from concord.audit import service as audit
from concord.errors import ConcordError, FaultLocation, Forbidden, InvalidInput, NotFound
from concord.orgs import readers, service
from concord.orgs.api import whois_lookup
from concord.orgs.model import AssetKind, Organization, OrgKind
from concord.web.deps import get_db
from concord.web.ui import check_csrf, page, ui_principal
from concord.web.uploads import read_upload

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100
CHOICES_LIMIT = 1000
ORG_CHOICES = 500  # organisations a form lists; beyond, the slug is typed
LANGUAGES = ("en", "ru")
ORG_FIELDS = tuple(service.OrgInput.__dataclass_fields__)


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _after(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _next_after(rows: list[Any], key: Any) -> int | None:
    return key(rows[-1]) if len(rows) == PAGE_SIZE else None


async def _import(
    session: Session,
    p: Principal,
    org_slug: str,
    file: UploadFile | None,
    valid_only: bool,
) -> service.ImportReport:
    upload = await read_upload(None, file, missing="choose a CSV or JSON file to import")
    rows = list(readers.read(upload.data, upload.name))
    return service.import_assets(session, p, org_slug, rows, valid_only=valid_only)


# --- organisations -------------------------------------------------------------------------


@router.get("/organizations", response_class=HTMLResponse)
def organizations(
    request: Request,
    kind: str | None = None,
    country: str | None = None,
    q: str | None = None,
    after: str | None = None,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    # A filter that cannot be read is told beside the form, as typed, with no list: the
    # whole directory would read as what the filter found.
    error: InvalidInput | None = None
    try:
        orgs = service.list_orgs(
            session,
            p,
            kind=_blank(kind),
            country=_blank(country),
            q=_blank(q),
            after_id=_after(after),
            limit=PAGE_SIZE,
        )
    except InvalidInput as exc:
        orgs, error = [], exc
    audit.record_reads(session, p, "organization", orgs)
    return page(
        request,
        session,
        "org_list.html",
        status=error.status if error else 200,
        error=error,
        orgs=orgs,
        parents=service.parent_slugs(session, orgs),
        kinds=[k.value for k in OrgKind],
        filters={"kind": kind or "", "country": country or "", "q": q or ""},
        may_create=policy.staff_writer(p),
        next_after=_next_after(orgs, lambda o: o.id),
    )


def _org_form(
    request: Request,
    session: Session,
    p: Principal,
    form: dict[str, str],
    error: ConcordError | None = None,
) -> Response:
    # Only what the policy lets this user create: a national body adds owners and partners
    # under itself; the centre adds anything under any body.
    if p.is_centre:
        parents = [
            o
            for kind in (OrgKind.NATIONAL_BODY, OrgKind.CENTRE)
            for o in service.list_orgs(session, p, kind=kind.value, limit=CHOICES_LIMIT)
        ]
    else:
        parents = [o for o in [session.get(Organization, p.org_id)] if o is not None]
    return page(
        request,
        session,
        "org_form.html",
        status=error.status if error else 200,
        form=form,
        error=error,
        kinds=[k.value for k in policy.creatable_org_kinds(p)],
        tlps=[t.value for t in TLP],
        languages=LANGUAGES,
        parents=parents,
        parent_optional=p.is_centre,
    )


@router.get("/organizations/new", response_class=HTMLResponse)
def new_organization(
    request: Request, p: Principal = Depends(ui_principal), session: Session = Depends(get_db)
) -> Response:
    if not policy.staff_writer(p):
        raise Forbidden("only admins and analysts create organisations")
    form = dict.fromkeys(ORG_FIELDS, "")
    form.update(kind=OrgKind.OWNER.value, language="en")
    if not p.is_centre:  # its owners go under itself
        own = session.get(Organization, p.org_id)
        form.update(parent=own.slug if own else "", country=own.country or "" if own else "")
    return _org_form(request, session, p, form)


@router.post("/organizations/new", response_class=HTMLResponse)
def create_organization(
    request: Request,
    slug: str = Form(""),
    kind: str = Form(""),
    name_en: str = Form(""),
    name_ru: str = Form(""),
    country: str = Form(""),
    sector: str = Form(""),
    language: str = Form("en"),
    parent: str = Form(""),
    tlp: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    form = {
        "slug": slug,
        "kind": kind,
        "name_en": name_en,
        "name_ru": name_ru,
        "country": country,
        "sector": sector,
        "language": language,
        "parent": parent,
        "tlp": tlp,
    }
    try:
        check_csrf(request, csrf_token)
        org = service.create_org(
            session,
            p,
            service.OrgInput(
                slug=slug,
                kind=kind,
                name_en=name_en,
                name_ru=name_ru,
                country=_blank(country),
                sector=_blank(sector),
                language=language or "en",
                parent=_blank(parent),
                tlp=_blank(tlp),
            ),
        )
    except ConcordError as exc:
        session.rollback()
        return _org_form(request, session, p, form, exc)
    session.commit()
    return RedirectResponse(f"/organizations/{quote(org.slug)}", status_code=303)


def _org_page(
    request: Request,
    session: Session,
    p: Principal,
    slug: str,
    *,
    status: int = 200,
    contact_form: dict[str, str] | None = None,
    contact_error: ConcordError | None = None,
    import_error: ConcordError | None = None,
    report: service.ImportReport | None = None,
    valid_only: bool = False,
) -> Response:
    org = service.get_org(session, p, slug)
    audit.record_reads(session, p, "organization", [org])
    parents = service.parent_slugs(session, [org])
    # an organisation outside the reader's scope shows none: the page says who sees them
    managed = policy.in_scope(p, org)
    contacts = (
        service.list_contacts(session, p, org_slug=org.slug, limit=CHOICES_LIMIT) if managed else []
    )
    assets = (
        service.list_assets(session, p, org_slug=org.slug, limit=CHOICES_LIMIT) if managed else []
    )
    return page(
        request,
        session,
        "org_detail.html",
        status=status,
        org=org,
        parent=parents.get(org.parent_id) if org.parent_id else None,
        contacts=[c for c, _slug in contacts],
        assets=[a for a, _slug in assets],
        contact_form=contact_form or {"role": "security", "language": org.language},
        contact_error=contact_error,
        import_error=import_error,
        report=report,
        valid_only=valid_only,
        languages=LANGUAGES,
        may_edit=policy.may_write_org_data(p, org),
        # outside the reader's scope the lists are empty whatever the organisation holds
        sees_inside=policy.in_scope(p, org),
    )


@router.get("/organizations/{slug}", response_class=HTMLResponse)
def organization(
    request: Request,
    slug: str,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _org_page(request, session, p, slug)


@router.post("/organizations/{slug}/contacts", response_class=HTMLResponse)
def add_contact(
    request: Request,
    slug: str,
    name: str = Form(""),
    email: str = Form(""),
    phone: str = Form(""),
    role: str = Form("security"),
    language: str = Form("en"),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    form = {"name": name, "email": email, "phone": phone, "role": role, "language": language}
    try:
        check_csrf(request, csrf_token)
        service.add_contact(
            session,
            p,
            slug,
            service.ContactInput(
                name=name,
                email=email,
                phone=_blank(phone),
                role=role or "security",
                language=language or "en",
            ),
        )
    except ConcordError as exc:
        session.rollback()
        return _org_page(
            request,
            session,
            p,
            slug,
            status=exc.status,
            contact_form=form,
            contact_error=exc,
        )
    session.commit()
    return RedirectResponse(f"/organizations/{quote(slug)}#contacts", status_code=303)


@router.post("/organizations/{slug}/assets/import", response_class=HTMLResponse)
async def import_org_assets(
    request: Request,
    slug: str,
    file: UploadFile | None = File(None),
    valid_only: bool = Form(False),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    """The report (with every refused row) is the answer to the upload, so it is rendered
    here rather than redirected: importing the same file again changes nothing."""
    try:
        check_csrf(request, csrf_token)
        report = await _import(session, p, slug, file, valid_only)
    except ConcordError as exc:
        session.rollback()
        return _org_page(
            request, session, p, slug, status=exc.status, import_error=exc, valid_only=valid_only
        )
    session.commit()
    return _org_page(
        request,
        session,
        p,
        slug,
        status=200 if report.imported else 422,
        report=report,
        valid_only=valid_only,
    )


# --- contacts and assets -------------------------------------------------------------------


@router.get("/contacts", response_class=HTMLResponse)
def contacts(
    request: Request,
    org: str | None = None,
    after: str | None = None,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    # an organisation that cannot be read is told beside the form, as typed, with no list
    error: InvalidInput | None = None
    try:
        rows = service.list_contacts(
            session, p, org_slug=_blank(org), after_id=_after(after), limit=PAGE_SIZE
        )
    except InvalidInput as exc:
        rows, error = [], exc
    return page(
        request,
        session,
        "contacts.html",
        status=error.status if error else 200,
        error=error,
        rows=rows,
        org=org or "",
        next_after=_next_after(rows, lambda r: r[0].id),
    )


def _assets_page(
    request: Request,
    session: Session,
    p: Principal,
    *,
    org: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    after: str | None = None,
    status: int = 200,
    import_org: str = "",
    import_error: ConcordError | None = None,
    report: service.ImportReport | None = None,
    valid_only: bool = False,
) -> Response:
    # A filter that cannot be read is told beside the form, as typed, with no list; the
    # import below stays usable.
    filter_error: InvalidInput | None = None
    try:
        rows = service.list_assets(
            session,
            p,
            org_slug=_blank(org),
            kind=_blank(kind),
            q=_blank(q),
            after_id=_after(after),
            limit=PAGE_SIZE,
        )
    except InvalidInput as exc:
        rows, filter_error, status = [], exc, exc.status
    # the owners of the assets this user may see (those of its scope): listed while few,
    # typed beyond
    owners = service.managed_orgs(session, p, limit=ORG_CHOICES + 1)
    return page(
        request,
        session,
        "assets.html",
        status=status,
        filter_error=filter_error,
        rows=rows,
        owners=owners[:ORG_CHOICES],
        owners_typed=len(owners) > ORG_CHOICES,
        # the import offers only the organisations whose assets this user may change
        import_owners=[o for o in owners[:ORG_CHOICES] if policy.may_write_org_data(p, o)],
        kinds=[k.value for k in AssetKind],
        filters={"org": org or "", "kind": kind or "", "q": q or ""},
        next_after=_next_after(rows, lambda r: r[0].id),
        import_org=import_org,
        import_error=import_error,
        report=report,
        valid_only=valid_only,
    )


@router.get("/assets", response_class=HTMLResponse)
def assets(
    request: Request,
    org: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    after: str | None = None,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _assets_page(request, session, p, org=org, kind=kind, q=q, after=after)


@router.post("/assets/import", response_class=HTMLResponse)
async def import_assets(
    request: Request,
    org: str = Form(""),
    file: UploadFile | None = File(None),
    valid_only: bool = Form(False),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    try:
        check_csrf(request, csrf_token)
        if not org.strip():
            raise InvalidInput("choose the owner of the assets", FaultLocation(field="org"))
        report = await _import(session, p, org.strip(), file, valid_only)
    except ConcordError as exc:
        session.rollback()
        return _assets_page(
            request,
            session,
            p,
            status=exc.status,
            import_org=org,
            import_error=exc,
            valid_only=valid_only,
        )
    session.commit()
    return _assets_page(
        request,
        session,
        p,
        org=org,
        status=200 if report.imported else 422,
        import_org=org,
        report=report,
        valid_only=valid_only,
    )


# --- lookup --------------------------------------------------------------------------------


@router.get("/whois", response_class=HTMLResponse)
def whois(
    request: Request,
    q: str | None = None,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    query = (q or "").strip()
    result = None
    error: ConcordError | None = None
    if query:
        try:
            result = whois_lookup(session, p, query)
        except (NotFound, InvalidInput) as exc:
            error = exc
    return page(
        request,
        session,
        "whois.html",
        status=error.status if error else 200,
        q=query,
        result=result,
        error=error,
    )
