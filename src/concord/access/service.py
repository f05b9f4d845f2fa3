"""Users, passwords, API tokens and web sessions: the only code that writes them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import ApiToken, Principal, Role, TokenScope, User, WebSession
from concord.audit import service as audit
from concord.config import get_settings
from concord.db import as_utc, contains_pattern, utcnow, write_for_read
from concord.errors import (
    Conflict,
    FaultLocation,
    Faults,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    given_value,
)
from concord.orgs import validate
from concord.orgs.model import Organization

TOKEN_PREFIX = "cnc"
MIN_PASSWORD = 10


@lru_cache(maxsize=2)
def _hasher(fast: bool) -> PasswordHasher:
    if fast:  # for test suites only: same algorithm, smaller cost
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher(get_settings().argon2_fast).hash(password)


@lru_cache(maxsize=1)
def _stand_in_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        # the same work as for a real account: the answer's time tells no name apart
        _verify_password(_stand_in_hash(), password)
        return False
    try:
        return _hasher(False).verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def principal_for(
    user: User,
    org: Organization,
    scopes: frozenset[TokenScope] | None = None,
    address: str | None = None,
) -> Principal:
    role = Role(user.role)
    allowed = policy.scopes_for_role(role)
    return Principal(
        user_id=user.id,
        username=user.username,
        org_id=org.id,
        org_kind=org.kind,
        org_parent_id=org.parent_id,
        role=role,
        scopes=allowed if scopes is None else allowed & scopes,
        address=address,
        language=user.language or "",
    )


def _org_of(session: Session, user: User) -> Organization:
    org = session.get(Organization, user.org_id)
    assert org is not None  # foreign key
    return org


# --- users ---------------------------------------------------------------------------------


@dataclass
class UserInput:
    username: str
    org: str
    role: str
    password: str | None = None
    full_name: str = ""
    email: str | None = None
    language: str | None = None


def create_user(session: Session, principal: Principal | None, data: UserInput) -> User:
    from concord.orgs.service import named_org

    faults = Faults()  # every field's fault told at once, not one per attempt
    username = faults.check(lambda: _username(data.username), "")
    org = faults.check(lambda: named_org(session, principal, data.org), None)
    if org is not None and principal is not None:
        # What the caller may not do is said first, whatever else the input gets wrong.
        try:
            policy.check_user_admin(principal, org)
        except policy.AccessDenied as exc:
            raise Forbidden(str(exc)) from None
    role = faults.check(lambda: _role(data.role), None)
    if org is not None and role is not None:
        faults.check(lambda: _check_role_of(org, role), None)
    faults.check(lambda: _check_password(data.password), None)
    email = faults.check(lambda: given_value(validate.email, data.email, "email"), None)
    language = faults.check(
        lambda: given_value(validate.language, data.language, "language"),
        None,
    )
    faults.raise_any()
    assert org is not None and role is not None  # faults otherwise
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"a user {username!r} exists already")
    user = User(
        username=username,
        full_name=data.full_name.strip(),
        email=email,
        org_id=org.id,
        role=role.value,
        language=language,
        password_hash=hash_password(data.password) if data.password else None,
    )
    session.add(user)
    session.flush()
    audit.record(
        session, principal, "create", "user", username, {"org": org.slug, "role": role.value}
    )
    return user


def _username(text: str) -> str:
    username = text.strip().lower()
    # Latin letters only: a Cyrillic "с" would make a lookalike of another user's name.
    if (
        not username
        or len(username) > 64
        or not all(c.isascii() and (c.isalnum() or c in "._-@") for c in username)
    ):
        raise InvalidInput(
            "a username is 1-64 Latin letters, digits, dots, hyphens, underscores or @",
            FaultLocation(field="username"),
        )
    return username


def _role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise InvalidInput(
            f"unknown role {text!r}; use one of {', '.join(r.value for r in Role)}",
            FaultLocation(field="role"),
        ) from None


def _check_role_of(org: Organization, role: Role) -> None:
    if role not in policy.allowed_roles(org.kind):
        allowed = ", ".join(r.value for r in policy.allowed_roles(org.kind))
        raise InvalidInput(
            f"users of an organisation of kind {org.kind} may have the roles {allowed}",
            FaultLocation(field="role"),
        )


def _check_password(password: str | None) -> None:
    if password is not None and len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"a password needs at least {MIN_PASSWORD} characters", FaultLocation(field="password")
        )


def list_users(
    session: Session,
    principal: Principal,
    *,
    org_slug: str | None = None,
    role: str | None = None,
    q: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[tuple[User, str]]:
    """The users in the principal's scope, by id; `q` finds a part of a username, a full
    name or an e-mail address. A filter nothing can match is told, every one at once."""
    from concord.orgs.service import scoped_with_org_slug, slug_in_scope

    faults = Faults()
    org_slug = slug_in_scope(session, principal, org_slug, faults)
    if role:
        faults.check(lambda: _known_role(role), None)
    faults.raise_any()
    stmt = scoped_with_org_slug(principal, User, org_slug, after_id)
    if role:
        stmt = stmt.where(User.role == role)
    if q and q.strip():
        like = contains_pattern(q)
        stmt = stmt.where(
            User.username.like(like, escape="\\")
            | func.lower(User.full_name).like(like, escape="\\")
            | func.lower(func.coalesce(User.email, "")).like(like, escape="\\")
        )
    return [(u, s) for u, s in session.execute(stmt.order_by(User.id).limit(limit))]


def _known_role(role: str) -> None:
    if role not in {r.value for r in Role}:
        roles = ", ".join(r.value for r in Role)
        raise InvalidInput(
            f"unknown role {role!r}; use one of {roles}", FaultLocation(field="role")
        )


def get_user(session: Session, principal: Principal | None, username: str) -> User:
    stmt = select(User).where(User.username == username.lower())
    if principal is not None:
        stmt = stmt.where(policy.scope_filter(principal, User.org_id))
    user = session.scalar(stmt)
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def set_language(session: Session, principal: Principal, language: str) -> None:
    if principal.user_id is None:
        return
    session.execute(update(User).where(User.id == principal.user_id).values(language=language))


def _managed_user(session: Session, principal: Principal | None, username: str) -> User:
    """The account named, if `principal` manages it (None: the operator at the console)."""
    user = get_user(session, principal, username)
    if principal is not None:
        try:
            policy.check_user_admin(principal, _org_of(session, user))
        except policy.AccessDenied as exc:
            raise Forbidden(str(exc)) from None
    return user


def set_active(session: Session, principal: Principal | None, username: str, active: bool) -> User:
    """Enable or disable an account (None: the operator at the console). A disabled one
    loses its tokens and its sessions at once."""
    user = _managed_user(session, principal, username)
    if not active and user.active and principal is not None and user.id == principal.user_id:
        # one could not sign in again to undo it: the centre's only admin would lock all out
        raise Conflict("you cannot deactivate your own account; ask another admin")
    user.active = active
    if not active:
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        session.query(WebSession).filter(WebSession.user_id == user.id).delete()
    audit.record(session, principal, "enable" if active else "disable", "user", user.username)
    return user


def unlock(session: Session, principal: Principal | None, username: str) -> User:
    """Lift the lock that failed sign-ins put on an account, before it ends by itself: the
    admin who manages the account (None: the operator at the console) vouches for the
    person asking."""
    user = _managed_user(session, principal, username)
    if user.locked_until is None or user.locked_until <= utcnow():
        raise Conflict(f"user {user.username!r} is not locked")
    user.failed_logins = 0
    user.locked_until = None
    audit.record(session, principal, "unlock", "user", user.username)
    return user


def parse_active(text: str) -> bool:
    """A form's choice to enable (true) or disable (false) an account: nothing else is
    guessed at, as a wrong guess would lock someone out or let them back in."""
    choice = text.strip().lower()
    if choice not in ("true", "false"):
        raise InvalidInput(f"active is true or false, not {text!r}", FaultLocation(field="active"))
    return choice == "true"


def set_password(session: Session, username: str, password: str) -> User:
    """The operator's way back in for a user (an admin who forgot, or locked out): a new
    password, the lock lifted, and every web session of the account closed."""
    user = get_user(session, None, username)
    _check_password(password)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    session.query(WebSession).filter(WebSession.user_id == user.id).delete()
    audit.record(session, None, "password", "user", user.username)
    return user


# --- login and web sessions ----------------------------------------------------------------


def authenticate(session: Session, username: str, password: str, address: str | None) -> User:
    """Check a password with lockout after repeated failures; commits its bookkeeping itself
    through the caller's session (the caller commits even on failure)."""
    settings = get_settings()
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    now = utcnow()
    failure = Unauthorized("wrong username or password")
    # a failed attempt is nobody's yet: recorded as anonymous, from where it came
    attempt = Principal(None, None, None, None, None, None, address=address)
    if user is None or not user.active:
        _verify_password(None, password)
        audit.record(session, attempt, "login-failed", "user", username[:64])
        raise failure
    if user.locked_until is not None and user.locked_until > now:
        # Only the right password learns of the lock: to anyone guessing, a locked account
        # answers as a wrong password, so the lock does not tell that the name exists.
        audit.record(session, attempt, "login-locked", "user", user.username)
        if not _verify_password(user.password_hash, password):
            raise failure
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise Unauthorized(f"too many failed attempts; try again in {minutes} min")
    if not _verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
            user.failed_logins = 0
        audit.record(session, attempt, "login-failed", "user", user.username)
        raise failure
    user.failed_logins = 0
    user.locked_until = None
    user.last_login = now
    return user


def open_session(session: Session, user: User, address: str | None) -> tuple[str, WebSession]:
    token = secrets.token_urlsafe(32)
    web = WebSession(
        token_hash=_sha256(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=utcnow() + timedelta(hours=get_settings().session_hours),
        address=address,
    )
    session.add(web)
    org = _org_of(session, user)
    audit.record(session, principal_for(user, org, address=address), "login", "user", user.username)
    return token, web


def resolve_session(
    session: Session, token: str, address: str | None
) -> tuple[Principal, WebSession] | None:
    web = session.scalar(select(WebSession).where(WebSession.token_hash == _sha256(token)))
    if web is None or web.expires_at <= utcnow():
        return None
    user = session.get(User, web.user_id)
    if user is None or not user.active:
        return None
    return principal_for(user, _org_of(session, user), address=address), web


def close_session(session: Session, token: str) -> None:
    session.query(WebSession).filter(WebSession.token_hash == _sha256(token)).delete()


def purge_expired_sessions(session: Session) -> int:
    return session.query(WebSession).filter(WebSession.expires_at <= utcnow()).delete()


# --- API tokens ----------------------------------------------------------------------------


def parse_scopes(text: str | list[str] | None) -> frozenset[TokenScope]:
    """The scopes named. Nothing said (no value, a blank text: a stored token's, an empty
    option) is read; a list is a choice (a form's boxes, a request's field), and an empty
    one chooses none, which `create_token` refuses rather than taking as read."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return frozenset({TokenScope.READ})
    items = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text)]
    known = {s.value for s in TokenScope}
    unknown = [s for s in items if s and s not in known]
    if unknown:
        raise InvalidInput(
            f"unknown scope(s) {', '.join(map(repr, unknown))}; use read, write, admin",
            FaultLocation(field="scopes"),
        )
    return frozenset(TokenScope(s) for s in items if s)


def create_token(
    session: Session,
    principal: Principal | None,
    username: str,
    name: str,
    scopes: frozenset[TokenScope],
    expires_at: datetime | None = None,
) -> tuple[str, ApiToken]:
    """Returns the token text (shown once) and its record."""
    if principal is not None and principal.anonymous:
        raise Unauthorized()
    if principal is not None and principal.username != username.strip().lower():
        # A token acts as its user, RED and AMBER+STRICT shares included: minting one for
        # someone else would let an admin read what was given to that person alone. Only
        # the operator (the command line) issues tokens for others, e.g. for a machine user.
        raise Forbidden("a token is created by the user who will hold it")
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"no user {username!r}")
    faults = Faults()  # both faults told at once
    faults.check(lambda: _check_expiry(expires_at), None)
    faults.check(lambda: _check_scopes(user, scopes), None)
    faults.raise_any()
    if principal is not None and principal.user_id == user.id and not scopes <= principal.scopes:
        raise Forbidden("a token cannot grant more than the credential that creates it")
    if principal is not None and principal.via_token:
        # A leaked token must not mint its own successors: only one that may write does,
        # and what it mints ends when it ends.
        _check_token_may_manage(principal)
        ends = principal.token_expires_at
        if ends is not None and (expires_at is None or expires_at > ends):
            expires_at = ends
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=(name or "token").strip()[:100],
        key_id=key_id,
        secret_hash=_sha256(secret),
        scopes=",".join(sorted(s.value for s in scopes)),
        expires_at=expires_at,
        parent_id=principal.token_id if principal is not None and principal.via_token else None,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        principal,
        "create",
        "token",
        token.id,
        {"user": user.username, "scopes": token.scopes},
    )
    return f"{TOKEN_PREFIX}_{key_id}_{secret}", token


def resolve_token(session: Session, text: str, address: str | None) -> Principal | None:
    parts = text.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.key_id == parts[1]))
    if token is None or not hmac.compare_digest(token.secret_hash, _sha256(parts[2])):
        return None
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    # Write last-used at most once a minute, so busy clients do not write on every call.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token_id = token.id
        write_for_read(
            session,
            lambda s: s.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            ),
        )
    found = principal_for(user, _org_of(session, user), parse_scopes(token.scopes), address)
    return replace(found, via_token=True, token_expires_at=token.expires_at, token_id=token.id)


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and as_utc(expires_at) <= utcnow():
        raise InvalidInput(
            "the token would be expired already: give an expiry in the future",
            FaultLocation(field="expires_at"),
        )


def _check_scopes(user: User, scopes: frozenset[TokenScope]) -> None:
    if not scopes:  # a token that may do nothing is a mistake, not a read token
        raise InvalidInput(
            "choose at least one scope: read, write or admin", FaultLocation(field="scopes")
        )
    allowed = policy.scopes_for_role(Role(user.role))
    if not scopes <= allowed:
        extra = ", ".join(sorted(s.value for s in scopes - allowed))
        raise InvalidInput(
            f"a {user.role} cannot hold the scope(s) {extra}", FaultLocation(field="scopes")
        )


def list_tokens(
    session: Session,
    principal: Principal,
    *,
    username: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[tuple[ApiToken, str]]:
    stmt = (
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.id > after_id)
    )
    if principal.role == Role.ADMIN and principal.can(TokenScope.ADMIN):
        stmt = stmt.where(policy.scope_filter(principal, User.org_id))
    else:
        stmt = stmt.where(User.id == principal.user_id)
    if username:
        stmt = stmt.where(User.username == username.lower())
    return [(t, u) for t, u in session.execute(stmt.order_by(ApiToken.id).limit(limit))]


def get_token(session: Session, token_id: int) -> ApiToken:
    """A token by id, for the console (the API and UI go through `list_tokens`)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}")
    return token


def _check_token_may_manage(principal: Principal) -> None:
    if not principal.can(TokenScope.WRITE):
        raise Forbidden("managing tokens with a token needs its write scope")


def revoke_token(session: Session, principal: Principal | None, token_id: int) -> ApiToken:
    if principal is not None and principal.via_token:
        _check_token_may_manage(principal)
    token = session.get(ApiToken, token_id)
    user = session.get(User, token.user_id) if token else None
    if token is None or user is None:
        raise NotFound(f"no token {token_id}")
    if principal is not None and principal.user_id != user.id:
        org = _org_of(session, user)
        if not policy.in_scope(principal, org):
            raise NotFound(f"no token {token_id}")
        try:
            policy.check_user_admin(principal, org)
        except policy.AccessDenied as exc:
            raise Forbidden(str(exc)) from None
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, principal, "revoke", "token", token.id, {"user": user.username})
    _revoke_descendants(session, principal, token)
    return token


def _revoke_descendants(session: Session, principal: Principal | None, token: ApiToken) -> None:
    """Revoke what `token` created, and what those created: a token's successors end when
    it ends, or a leaked token could outlive its revocation through one it minted."""
    parents = [token.id]
    now = utcnow()
    while parents:
        children = list(session.scalars(select(ApiToken).where(ApiToken.parent_id.in_(parents))))
        for child in children:
            if child.revoked_at is None:
                child.revoked_at = now
                audit.record(
                    session, principal, "revoke", "token", child.id, {"with_token": token.id}
                )
        parents = [child.id for child in children]
