"""UI plumbing shared by every domain's views: templates, language, CSRF, login."""

from __future__ import annotations

import secrets
from dataclasses import asdict
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from concord import __version__, i18n
from concord.access import service as access
from concord.access.model import Principal
from concord.config import get_settings
from concord.db import READ_WRITES, session_factory, utcnow
from concord.errors import ConcordError, Forbidden, Unauthorized
from concord.events.rsit import TYPE_LABELS
from concord.intake.records import KIND_LABELS
from concord.site import is_demo
from concord.web.deps import SESSION_COOKIE, client_address, get_db, resolve_principal

PACKAGE = Path(__file__).resolve().parents[1]
TEMPLATE_DIRS = [PACKAGE / "web" / "templates"] + [
    PACKAGE / domain / "templates"
    for domain in ("orgs", "access", "audit", "cases", "reports", "intake", "events")
]
templates = Jinja2Templates(
    env=__import__("jinja2").Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in TEMPLATE_DIRS if d.exists()]),
        autoescape=True,
    )
)
# RSIT types by their readable names on every page (translated there); data keeps the slugs
templates.env.globals["rsit_type_labels"] = TYPE_LABELS
templates.env.globals["kind_labels"] = KIND_LABELS
LANG_COOKIE = "concord_lang"
# Before sign-in there is no session to hold a CSRF token: the login form carries one that
# must match this cookie, which a cross-site form cannot send (SameSite), so no other site can
# sign a visitor in under an account of its choosing.
LOGIN_COOKIE = "concord_login"
LOGIN_FORM_EXPIRED = "the sign-in form has expired or did not come from this site; sign in again"
router = APIRouter(include_in_schema=False)


class PageFilters:
    """A list page's filters as typed, for a frozen dataclass of text fields: shown back in
    the page's form, and kept by its links (the pager's `after=...` added)."""

    def query(self, **more: object) -> str:
        """The filters given (and `more`) as a query string, "?" first; "" when none is."""
        given = {k: v for k, v in {**asdict(self), **more}.items() if v}
        return f"?{urlencode(given)}" if given else ""


def language_of(request: Request, principal: Principal | None) -> str:
    if principal is not None and principal.language in i18n.LANGUAGES:
        return principal.language
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in i18n.LANGUAGES:
        return cookie
    return i18n.negotiate(request.headers.get("accept-language"), get_settings().default_language)


def ui_principal(request: Request, session: Session = Depends(get_db)) -> Principal:
    """Signed-in principal for UI pages; anonymous visitors are sent to the login page."""
    p = resolve_principal(request, session)
    if p.anonymous:
        raise Unauthorized()
    return p


def check_csrf(request: Request, token: str | None) -> None:
    expected = getattr(request.state, "csrf_token", None)
    if not expected or not token or not secrets.compare_digest(expected, token):
        raise Forbidden("the form has expired or did not come from this site; reload the page")


def page(
    request: Request, session: Session, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    p: Principal | None = getattr(request.state, "principal", None)
    lang = language_of(request, p)
    base = {
        "request": request,
        "principal": p if p is not None and not p.anonymous else None,
        "lang": lang,
        "_": i18n.translator(lang),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "demo": is_demo(session),
        "version": __version__,
        "path": request.url.path,
        "here": return_to(request),
    }
    return templates.TemplateResponse(request, template, {**base, **context}, status_code=status)


def render_error(request: Request, status: int, title: str, detail: str) -> Response:
    # Read-only: an error page must not wait for the write lock a long intake may hold, and
    # a principal that cannot be resolved now only costs the page its menu.
    session = session_factory(readonly=True)()
    session.info[READ_WRITES] = "skip"  # what resolving the principal would write is left out
    try:
        if getattr(request.state, "principal", None) is None:
            try:
                resolve_principal(request, session)
            except (ConcordError, SQLAlchemyError):
                session.rollback()
        return page(
            request,
            session,
            "error.html",
            status=status,
            status_code=status,
            title=title,
            detail=detail,
        )
    finally:
        session.close()


def _safe_next(target: str | None) -> str:
    # Only local paths (with their query): never redirect a login to another site.
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlparse(target)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def return_to(request: Request) -> str:
    """Where a sign-in or a change of language brings the user back: the page as shown,
    filters included. A page shown in answer to a form has no address to come back to
    (its POST route answers nothing else), so that is the page the form was on."""
    if request.method == "GET":
        query = request.url.query
        return request.url.path + (f"?{query}" if query else "")
    referer = urlparse(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path.startswith("/"):
        return _safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))
    return "/"


def _secure(request: Request) -> bool:
    setting = get_settings().secure_cookies
    return request.url.scheme == "https" if setting is None else setting


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request,
    next: str | None = None,
    ended: bool = False,
    session: Session = Depends(get_db),
) -> Response:
    resolve_principal(request, session)
    notice = SESSION_ENDED if ended else None
    return _login_page(request, session, next=_safe_next(next), error=None, notice=notice)


# Said on the login page when a form was sent after the session ended.
SESSION_ENDED = (
    "Your session ended before the form was sent, so it was not taken: sign in, then fill "
    "it in and send it again."
)


def _login_page(request: Request, session: Session, status: int = 200, **context: Any) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = page(request, session, "login.html", status=status, login_token=token, **context)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/login",
        max_age=get_settings().session_hours * 3600,
    )
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    login_token: str = Form(""),
    session: Session = Depends(get_db),
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not login_token or not secrets.compare_digest(expected, login_token):
        request.state.principal = None
        return _login_page(
            request,
            session,
            status=403,
            next=_safe_next(next),
            error=LOGIN_FORM_EXPIRED,
            username=username,
        )
    try:
        user = access.authenticate(session, username, password, client_address(request))
    except Unauthorized as exc:
        session.commit()  # keep the failure count and the audit record
        request.state.principal = None
        return _login_page(
            request,
            session,
            status=401,
            next=_safe_next(next),
            error=exc.message,
            username=username,
        )
    token, _web = access.open_session(session, user, client_address(request))
    session.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        max_age=get_settings().session_hours * 3600,
    )
    return response


@router.post("/logout")
def logout(
    request: Request, csrf_token: str = Form(""), session: Session = Depends(get_db)
) -> Response:
    resolve_principal(request, session)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and getattr(request.state, "csrf_token", None):
        check_csrf(request, csrf_token)
        access.close_session(session, cookie)
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/language")
def switch_language(
    request: Request,
    language: str = Form(...),
    next: str = Form("/"),
    csrf_token: str = Form(""),
    session: Session = Depends(get_db),
) -> Response:
    p = resolve_principal(request, session)
    if language not in i18n.LANGUAGES:
        language = i18n.DEFAULT
    if not p.anonymous:
        check_csrf(request, csrf_token)
        access.set_language(session, p, language)
        session.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE, language, samesite="lax", max_age=365 * 86400, secure=_secure(request)
    )
    return response


# The dashboard's window of recent events, and the count beyond which it says "more than".
RECENT_DAYS = 7
RECENT_EVENTS_CAP = 10_000


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request, p: Principal = Depends(ui_principal), session: Session = Depends(get_db)
) -> Response:
    from concord.access import policy
    from concord.cases import service as cases
    from concord.events import correlation
    from concord.events import service as events
    from concord.intake import service as intake
    from concord.orgs import service as orgs

    # the last N days are today and the N - 1 before it, as a report of the last N days
    since = (utcnow() - timedelta(days=RECENT_DAYS - 1)).date()
    by_status = cases.counts(session, p)
    may_submit = policy.may_submit(p)
    return page(
        request,
        session,
        "dashboard.html",
        counts=orgs.counts(session, p),
        since=since,
        recent_days=RECENT_DAYS,
        recent_events=events.count_since(
            session, p, datetime.combine(since, time(), UTC), RECENT_EVENTS_CAP
        ),
        events_cap=RECENT_EVENTS_CAP,
        open_count=sum(by_status.get(s.value, 0) for s in cases.OPEN_STATUSES),
        open_cases=cases.open_cases(session, p),
        receives_alerts=correlation.receives_alerts(p),
        alerts=correlation.latest_alerts(session, p, 5),
        alert_count=correlation.count_alerted(session, p, RECENT_EVENTS_CAP),
        submissions=intake.recent_submissions(session, p, limit=5) if may_submit else [],
        may_submit=may_submit,
    )
