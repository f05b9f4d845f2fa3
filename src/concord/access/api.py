"""HTTP routes for the current principal, users and API tokens (thin)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from concord.access import service
from concord.access.model import ApiToken, Principal, Role, TokenScope, User
from concord.orgs.validate import LANGUAGES
from concord.web.deps import (
    Limit,
    RequestBody,
    UtcDatetime,
    choices,
    decode_cursor,
    get_db,
    next_cursor,
    user,
    writer,
)

router = APIRouter(tags=["accounts"])


class MeOut(BaseModel):
    username: str
    org: str
    org_kind: str
    role: str
    scopes: list[str]
    language: str


class UserOut(BaseModel):
    username: str
    full_name: str
    email: str | None
    org: str
    role: str
    language: str | None
    active: bool
    last_login: datetime | None
    locked: bool


class UserCreate(RequestBody):
    username: str = Field(min_length=1, max_length=64, examples=["jdoe"])
    org: str = Field(description="the organisation's slug", examples=["example-cert"])
    role: str = Field(json_schema_extra=choices(Role))
    password: str | None = Field(default=None, max_length=200)
    full_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320)
    language: str | None = Field(default=None, json_schema_extra={"enum": list(LANGUAGES)})


class UserPatch(RequestBody):
    active: bool | None = None
    locked: Literal[False] | None = Field(
        default=None,
        description="false lifts the lock failed sign-ins put on the account; only sign-ins lock",
    )


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


def user_out(u: User, org: str) -> UserOut:
    from concord.db import utcnow

    return UserOut(
        username=u.username,
        full_name=u.full_name,
        email=u.email,
        org=org,
        role=u.role,
        language=u.language,
        active=u.active,
        last_login=u.last_login,
        locked=u.locked_until is not None and u.locked_until > utcnow(),
    )


@router.get("/me", response_model=MeOut)
def me(p: Principal = Depends(user), session: Session = Depends(get_db)) -> MeOut:
    from concord.orgs.model import Organization

    org = session.get(Organization, p.org_id)
    return MeOut(
        username=p.username or "",
        org=org.slug if org else "",
        org_kind=p.org_kind or "",
        role=p.role.value if p.role else "",
        scopes=sorted(s.value for s in p.scopes),
        language=p.language,
    )


@router.get("/users", response_model=UserPage)
def list_users(
    org: str | None = None,
    role: str | None = None,
    q: str | None = Query(None, description="a part of a username, full name or e-mail"),
    cursor: str | None = None,
    limit: Limit = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> UserPage:
    rows = service.list_users(
        session, p, org_slug=org, role=role, q=q, after_id=decode_cursor(cursor), limit=limit
    )
    return UserPage(
        items=[user_out(u, s) for u, s in rows],
        next_cursor=next_cursor(rows, limit, key=lambda r: r[0].id),
    )


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(
    body: UserCreate,
    response: Response,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> UserOut:
    u = service.create_user(session, p, service.UserInput(**body.model_dump()))
    session.commit()
    response.headers["Location"] = f"/api/v1/users/{u.username}"
    return user_out(u, body.org)


@router.get("/users/{username}", response_model=UserOut)
def get_user(
    username: str, p: Principal = Depends(user), session: Session = Depends(get_db)
) -> UserOut:
    from concord.orgs.model import Organization

    u = service.get_user(session, p, username)
    org = session.get(Organization, u.org_id)
    return user_out(u, org.slug if org else "")


@router.patch("/users/{username}", response_model=UserOut)
def update_user(
    username: str,
    body: UserPatch,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> UserOut:
    from concord.orgs.model import Organization

    u = service.get_user(session, p, username)
    if body.active is not None:
        u = service.set_active(session, p, username, body.active)
    if body.locked is False:
        u = service.unlock(session, p, username)
    session.commit()
    org = session.get(Organization, u.org_id)
    return user_out(u, org.slug if org else "")


class TokenOut(BaseModel):
    id: int
    user: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool
    parent: int | None = Field(
        default=None, description="the token that created this one; revoking it revokes this"
    )


class TokenCreate(RequestBody):
    name: str = Field(default="token", max_length=100)
    user: str | None = Field(
        default=None, description="the caller; a token is only created by the user who holds it"
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["read"],
        json_schema_extra={"items": {"type": "string", **choices(TokenScope)}},
    )
    # an ISO 8601 string in JSON: the one field read leniently (request bodies are strict)
    expires_at: UtcDatetime | None = Field(default=None, strict=False)


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown only in this response")


class TokenPage(BaseModel):
    items: list[TokenOut]
    next_cursor: str | None


def token_out(t: ApiToken, username: str) -> TokenOut:
    return TokenOut(
        id=t.id,
        user=username,
        name=t.name,
        scopes=t.scopes.split(","),
        created_at=t.created_at,
        expires_at=t.expires_at,
        last_used_at=t.last_used_at,
        revoked=t.revoked_at is not None,
        parent=t.parent_id,
    )


@router.get("/tokens", response_model=TokenPage)
def list_tokens(
    user_name: str | None = Query(None, alias="user"),
    cursor: str | None = None,
    limit: Limit = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> TokenPage:
    rows = service.list_tokens(
        session, p, username=user_name, after_id=decode_cursor(cursor), limit=limit
    )
    return TokenPage(
        items=[token_out(t, u) for t, u in rows],
        next_cursor=next_cursor(rows, limit, key=lambda r: r[0].id),
    )


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(
    body: TokenCreate,
    response: Response,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> TokenCreated:
    target = body.user or p.username or ""
    secret, token = service.create_token(
        session, p, target, body.name, service.parse_scopes(body.scopes), body.expires_at
    )
    session.commit()
    response.headers["Cache-Control"] = "no-store"  # the answer holds the secret
    return TokenCreated(**token_out(token, target).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: int, p: Principal = Depends(user), session: Session = Depends(get_db)
) -> None:
    service.revoke_token(session, p, token_id)
    session.commit()
