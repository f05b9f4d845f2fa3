"""HTTP routes for organisations, contacts, assets and the owner lookup (thin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from concord.access.model import TLP, Principal
from concord.audit import service as audit
from concord.errors import ConcordError
from concord.orgs import readers, service, validate
from concord.orgs.model import Contact, Organization, OrgKind
from concord.web.deps import (
    Limit,
    RequestBody,
    choices,
    decode_cursor,
    get_db,
    next_cursor,
    user,
    writer,
)
from concord.web.problems import problem
from concord.web.uploads import read_upload

router = APIRouter(tags=["organisations"])


class OrgOut(BaseModel):
    slug: str
    kind: str
    name_en: str
    name_ru: str
    country: str | None
    sector: str | None
    language: str
    parent: str | None
    tlp: str


class OrgCreate(RequestBody):
    slug: str = Field(min_length=1, max_length=64, examples=["example-bank"])
    kind: str = Field(json_schema_extra=choices(OrgKind))
    name_en: str = Field(min_length=1, max_length=300, examples=["Example Bank"])
    name_ru: str = Field(default="", max_length=300, examples=["Банк Пример"])
    country: str | None = Field(default=None, description="ISO 3166 alpha-2", examples=["KZ"])
    sector: str | None = Field(default=None, max_length=100, examples=["finance"])
    language: str = Field(default="en", json_schema_extra={"enum": list(validate.LANGUAGES)})
    parent: str | None = Field(default=None, description="the national body's slug")
    tlp: str | None = Field(default=None, json_schema_extra=choices(TLP))


class OrgPatch(RequestBody):
    name_en: str | None = Field(default=None, max_length=300)
    name_ru: str | None = Field(default=None, max_length=300)
    country: str | None = None
    sector: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, json_schema_extra={"enum": list(validate.LANGUAGES)})
    tlp: str | None = Field(default=None, json_schema_extra=choices(TLP))


class ShareIn(RequestBody):
    org: str


class OrgPage(BaseModel):
    items: list[OrgOut]
    next_cursor: str | None


def org_out(org: Organization, parents: dict[int, str]) -> OrgOut:
    return OrgOut(
        slug=org.slug,
        kind=org.kind,
        name_en=org.name_en,
        name_ru=org.name_ru,
        country=org.country,
        sector=org.sector,
        language=org.language,
        parent=parents.get(org.parent_id) if org.parent_id else None,
        tlp=org.tlp,
    )


@router.get("/organizations", response_model=OrgPage)
def list_organizations(
    kind: str | None = None,
    country: str | None = None,
    parent: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> OrgPage:
    orgs = service.list_orgs(
        session,
        p,
        kind=kind,
        country=country,
        parent=parent,
        q=q,
        after_id=decode_cursor(cursor),
        limit=limit,
    )
    audit.record_reads(session, p, "organization", orgs)
    parents = service.parent_slugs(session, orgs)
    return OrgPage(items=[org_out(o, parents) for o in orgs], next_cursor=next_cursor(orgs, limit))


@router.post("/organizations", response_model=OrgOut, status_code=201)
def create_organization(
    body: OrgCreate,
    response: Response,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> OrgOut:
    org = service.create_org(session, p, service.OrgInput(**body.model_dump()))
    session.commit()
    response.headers["Location"] = f"/api/v1/organizations/{org.slug}"
    return org_out(org, service.parent_slugs(session, [org]))


@router.get("/organizations/{slug}", response_model=OrgOut)
def get_organization(
    slug: str, p: Principal = Depends(user), session: Session = Depends(get_db)
) -> OrgOut:
    org = service.get_org(session, p, slug)
    audit.record_reads(session, p, "organization", [org])
    return org_out(org, service.parent_slugs(session, [org]))


@router.patch("/organizations/{slug}", response_model=OrgOut)
def update_organization(
    slug: str, body: OrgPatch, p: Principal = Depends(writer), session: Session = Depends(get_db)
) -> OrgOut:
    org = service.update_org(session, p, slug, body.model_dump(exclude_none=True))
    session.commit()
    return org_out(org, service.parent_slugs(session, [org]))


@router.post("/organizations/{slug}/shares", status_code=204)
def share_organization(
    slug: str, body: ShareIn, p: Principal = Depends(writer), session: Session = Depends(get_db)
) -> None:
    service.share_org(session, p, slug, body.org)
    session.commit()


# --- contacts ------------------------------------------------------------------------------


class ContactOut(BaseModel):
    id: int
    org: str
    name: str
    email: str
    phone: str | None
    role: str
    language: str
    has_pgp_key: bool


class ContactCreate(RequestBody):
    org: str
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    role: str = Field(default="security", max_length=60)
    language: str = "en"
    pgp_key: str | None = Field(default=None, max_length=100_000)


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


def contact_out(c: Contact, org_slug: str) -> ContactOut:
    return ContactOut(
        id=c.id,
        org=org_slug,
        name=c.name,
        email=c.email,
        phone=c.phone,
        role=c.role,
        language=c.language,
        has_pgp_key=bool(c.pgp_key),
    )


@router.get("/contacts", response_model=ContactPage)
def list_contacts(
    org: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> ContactPage:
    rows = service.list_contacts(
        session, p, org_slug=org, after_id=decode_cursor(cursor), limit=limit
    )
    return ContactPage(
        items=[contact_out(c, s) for c, s in rows],
        next_cursor=next_cursor(rows, limit, key=lambda r: r[0].id),
    )


@router.post("/contacts", response_model=ContactOut, status_code=201)
def create_contact(
    body: ContactCreate, p: Principal = Depends(writer), session: Session = Depends(get_db)
) -> ContactOut:
    data = body.model_dump()
    org = service.named_org(session, p, data.pop("org")).slug  # a body field: 422, not 404
    contact = service.add_contact(session, p, org, service.ContactInput(**data))
    session.commit()
    return contact_out(contact, org)


@router.delete("/contacts/{contact_id}", status_code=204)
def delete_contact(
    contact_id: int, p: Principal = Depends(writer), session: Session = Depends(get_db)
) -> None:
    service.delete_contact(session, p, contact_id)
    session.commit()


# --- assets --------------------------------------------------------------------------------


class AssetOut(BaseModel):
    id: int
    org: str
    kind: str
    value: str
    version: str
    description: str


class AssetPage(BaseModel):
    items: list[AssetOut]
    next_cursor: str | None


class RefusedRow(BaseModel):
    source: str | None = None
    line: int | None = None
    pointer: str | None = None
    reason: str


class ImportOut(BaseModel):
    added: int
    changed: int
    unchanged: int
    refused: list[RefusedRow]
    imported: bool


@router.get("/assets", response_model=AssetPage)
def list_assets(
    org: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> AssetPage:
    rows = service.list_assets(
        session, p, org_slug=org, kind=kind, q=q, after_id=decode_cursor(cursor), limit=limit
    )
    items = [
        AssetOut(
            id=a.id, org=s, kind=a.kind, value=a.value, version=a.version, description=a.description
        )
        for a, s in rows
    ]
    return AssetPage(items=items, next_cursor=next_cursor(rows, limit, key=lambda r: r[0].id))


@router.post(
    "/assets/import",
    response_model=ImportOut,
    responses={422: {"description": "rows refused; nothing imported (see errors)"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
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
async def import_assets(
    request: Request,
    org: str,
    valid_only: bool = False,
    fmt: str | None = Query(None, alias="format"),
    file: UploadFile | None = File(None),
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> Any:
    """Import a CSV or JSON asset list for an owner. A file with refused rows imports
    nothing unless valid_only=true, and is answered 422 with every refused row and its
    location (in `errors`, and in `refused` as the report has it)."""
    if fmt is not None and fmt.strip().lower() not in ("csv", "json"):
        raise ConcordError(
            f"unknown asset file format {fmt!r}; use csv or json", 415, "Unsupported media type"
        )
    upload = await read_upload(request, file)
    declared = {"text/csv": "csv", "application/json": "json"}.get(upload.content_type)
    service.named_org(session, p, org)  # a query parameter: 422, not 404
    rows = list(readers.read(upload.data, upload.name, fmt or declared))
    report = service.import_assets(session, p, org, rows, valid_only=valid_only)
    if not report.imported:
        session.rollback()
        errors = [{**e.location.as_dict(), "detail": e.reason} for e in report.refused]
        first = report.refused[0]
        detail = (
            f"{len(report.refused)} row(s) refused, nothing imported (first: {first.location}: "
            f"{first.reason}); correct them, or send valid_only=true to import the others"
        )
        return problem(
            422, "Invalid input", detail, request.url.path, errors=errors, **report.as_dict()
        )
    session.commit()
    return ImportOut(**report.as_dict())


@router.delete("/assets/{asset_id}", status_code=204)
def delete_asset(
    asset_id: int, p: Principal = Depends(writer), session: Session = Depends(get_db)
) -> None:
    service.delete_asset(session, p, asset_id)
    session.commit()


# --- lookup --------------------------------------------------------------------------------


class WhoisContact(BaseModel):
    name: str
    email: str
    phone: str | None
    role: str
    language: str


class WhoisOrg(BaseModel):
    slug: str
    kind: str
    name_en: str
    name_ru: str
    country: str | None
    national_body: OrgOut | None
    contacts: list[WhoisContact]


class WhoisOut(BaseModel):
    query: str
    kind: str
    matched: str
    owners: list[WhoisOrg]


def whois_out(found: service.Whois) -> WhoisOut:
    return WhoisOut(
        query=found.query,
        kind=found.kind,
        matched=found.matched,
        owners=[
            WhoisOrg(
                slug=o.org.slug,
                kind=o.org.kind,
                name_en=o.org.name_en,
                name_ru=o.org.name_ru,
                country=o.org.country,
                national_body=org_out(o.national_body, {}) if o.national_body else None,
                contacts=[
                    WhoisContact(
                        name=c.name, email=c.email, phone=c.phone, role=c.role, language=c.language
                    )
                    for c in o.contacts
                ],
            )
            for o in found.owners
        ],
    )


def whois_lookup(session: Session, p: Principal, query: str) -> WhoisOut:
    return whois_out(service.whois(session, p, query))


@router.get("/whois/{query}", response_model=WhoisOut)
def whois(query: str, p: Principal = Depends(user), session: Session = Depends(get_db)) -> WhoisOut:
    """Who owns an IP address, a domain (or e-mail address) or an AS number: the most
    specific asset wins; the owner comes with its national body and contacts."""
    return whois_lookup(session, p, query)
