"""UI pages for users and API tokens (thin: parse the form, call the service, render).

Which users and tokens a principal sees, and what it may change, is decided by the access
service and policy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from concord.access import policy, service
from concord.access.model import Principal, Role, TokenScope, User
from concord.db import utcnow
from concord.errors import ConcordError, InvalidInput, NotFound
from concord.orgs import service as orgs
from concord.web.deps import get_db
from concord.web.ui import PageFilters, check_csrf, page, ui_principal

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 200
ORG_CHOICES = 500  # organisations listed in the new-user form; beyond, the slug is typed
LANGUAGES = ("en", "ru")


def _is_admin(p: Principal) -> bool:
    return p.role == Role.ADMIN and p.can(TokenScope.ADMIN)


@dataclass(frozen=True)
class UserFilters(PageFilters):
    org: str = ""
    role: str = ""
    q: str = ""


def _users_page(
    request: Request,
    session: Session,
    p: Principal,
    *,
    status: int = 200,
    filters: UserFilters = UserFilters(),
    after: str = "",
    form: dict[str, str] | None = None,
    error: ConcordError | None = None,
    created: str = "",
    changed: str = "",
    unlocked: str = "",
    change_error: ConcordError | None = None,
) -> Response:
    # A filter that cannot be read is told beside the form, as typed, with no list.
    filter_error: InvalidInput | None = None
    try:
        rows = service.list_users(
            session,
            p,
            org_slug=filters.org.strip() or None,
            role=filters.role or None,
            q=filters.q,
            after_id=int(after) if after.isdigit() else 0,
            limit=PAGE_SIZE,
        )
    except InvalidInput as exc:
        rows, filter_error = [], exc
        status = exc.status if status == 200 else status
    admin = _is_admin(p)
    # the organisations whose users this admin manages, offered in the form: a list to
    # choose from while they are few, a field to type a slug in (with suggestions) beyond
    managed = orgs.managed_orgs(session, p, limit=ORG_CHOICES + 1) if admin else []
    return page(
        request,
        session,
        "users.html",
        status=status,
        rows=rows,
        filters=filters,
        filter_error=filter_error,
        next_after=rows[-1][0].id if len(rows) == PAGE_SIZE else None,
        now=utcnow(),
        can_create=admin,
        # the accounts this admin may disable or enable (the list holds those of its scope
        # alone): its own is not among them
        switchable={u.username for u, _slug in rows} - {p.username or ""} if admin else set(),
        # named back only if this user may see the account, as it is now (it may be on
        # another page of the list)
        changed=_visible_user(session, p, changed),
        unlocked=unlocked if _visible_user(session, p, unlocked) else "",
        change_error=change_error,
        orgs=managed[:ORG_CHOICES],
        orgs_typed=len(managed) > ORG_CHOICES,
        # the form offers each organisation only the roles its kind allows
        org_roles={o.slug: [r.value for r in policy.allowed_roles(o.kind)] for o in managed},
        roles=[r.value for r in Role],
        languages=LANGUAGES,
        form=form or {},
        error=error,
        created=created if _visible_user(session, p, created) else "",
    )


def _visible_user(session: Session, p: Principal, username: str) -> User | None:
    if not username:
        return None
    try:
        return service.get_user(session, p, username)
    except NotFound:
        return None


@router.get("/users", response_class=HTMLResponse)
def users(
    request: Request,
    org: str = "",
    role: str = "",
    q: str = "",
    after: str = "",
    created: str = "",
    changed: str = "",
    unlocked: str = "",
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _users_page(
        request,
        session,
        p,
        filters=UserFilters(org, role, q),
        after=after,
        created=created,
        changed=changed,
        unlocked=unlocked,
    )


def _change_user(
    request: Request,
    session: Session,
    p: Principal,
    csrf_token: str,
    change: Callable[[], object],
    said: dict[str, str],
) -> Response:
    """A change to an account from the list: refused on the page itself, else done and
    said there (`said` is the query the page reads it from)."""
    try:
        check_csrf(request, csrf_token)
        change()
    except ConcordError as exc:
        session.rollback()
        return _users_page(request, session, p, status=exc.status, change_error=exc)
    session.commit()
    return RedirectResponse(f"/users?{urlencode(said)}", status_code=303)


@router.post("/users/{username}/active", response_class=HTMLResponse)
def set_user_active(
    request: Request,
    username: str,
    active: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    """Disable an account (its tokens revoked, its sessions closed at once) or enable it."""
    return _change_user(
        request,
        session,
        p,
        csrf_token,
        lambda: service.set_active(session, p, username, service.parse_active(active)),
        {"changed": username},
    )


@router.post("/users/{username}/unlock", response_class=HTMLResponse)
def unlock_user(
    request: Request,
    username: str,
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    """Let a user locked out by failed sign-ins in again before the lock ends."""
    return _change_user(
        request,
        session,
        p,
        csrf_token,
        lambda: service.unlock(session, p, username),
        {"unlocked": username},
    )


@router.post("/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    username: str = Form(""),
    full_name: str = Form(""),
    email: str = Form(""),
    org: str = Form(""),
    role: str = Form(""),
    password: str = Form(""),
    language: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    form = {
        "username": username,
        "full_name": full_name,
        "email": email,
        "org": org,
        "role": role,
        "language": language,
    }
    try:
        check_csrf(request, csrf_token)
        service.create_user(
            session,
            p,
            service.UserInput(
                username=username,
                org=org,
                role=role,
                password=password or None,
                full_name=full_name,
                email=email.strip() or None,
                language=language.strip() or None,
            ),
        )
    except ConcordError as exc:
        session.rollback()
        return _users_page(request, session, p, status=exc.status, form=form, error=exc)
    session.commit()
    return RedirectResponse(f"/users?{urlencode({'created': username})}", status_code=303)


def _tokens_page(
    request: Request,
    session: Session,
    p: Principal,
    *,
    status: int = 200,
    form: dict[str, object] | None = None,
    error: ConcordError | None = None,
    revoke_error: ConcordError | None = None,
    secret: str | None = None,
) -> Response:
    rows = service.list_tokens(session, p, limit=PAGE_SIZE)
    allowed = policy.scopes_for_role(p.role) if p.role else frozenset()
    return page(
        request,
        session,
        "tokens.html",
        status=status,
        rows=rows,
        now=utcnow(),
        scopes=[(s.value, s in allowed) for s in TokenScope],
        form=form or {"name": "", "scopes": ["read"]},
        error=error,
        revoke_error=revoke_error,
        secret=secret,
    )


@router.get("/tokens", response_class=HTMLResponse)
def tokens(
    request: Request, p: Principal = Depends(ui_principal), session: Session = Depends(get_db)
) -> Response:
    return _tokens_page(request, session, p)


@router.post("/tokens", response_class=HTMLResponse)
def create_token(
    request: Request,
    name: str = Form(""),
    scopes: list[str] = Form(default_factory=list),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    """Answers with the page itself (no redirect): the secret is shown this once only."""
    form: dict[str, object] = {"name": name, "scopes": scopes}
    try:
        check_csrf(request, csrf_token)
        secret, _token = service.create_token(
            session, p, p.username or "", name or "token", service.parse_scopes(scopes)
        )
    except ConcordError as exc:
        session.rollback()
        return _tokens_page(request, session, p, status=exc.status, form=form, error=exc)
    session.commit()
    response = _tokens_page(request, session, p, status=201, secret=secret)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token(
    request: Request,
    token_id: int,
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    try:
        check_csrf(request, csrf_token)
        service.revoke_token(session, p, token_id)
    except ConcordError as exc:
        session.rollback()
        return _tokens_page(request, session, p, status=exc.status, revoke_error=exc)
    session.commit()
    return RedirectResponse("/tokens", status_code=303)
