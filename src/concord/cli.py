"""Command line: parses, calls services, prints. One readable line and a non-zero exit on error."""

from __future__ import annotations

import errno
import getpass
import inspect
import json
import logging
import os
import re
import stat
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

if TYPE_CHECKING:
    from concord.access.model import Principal

from concord import __version__

app = typer.Typer(
    name="concord",
    help="Concord: coordination of computer incident response across national CERTs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
org_app = typer.Typer(help="Organisations of the network.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
assets_app = typer.Typer(help="Owners' network and software assets.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(assets_app, name="assets")
app.add_typer(audit_app, name="audit")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"concord {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    from concord.audit.service import system_actor

    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = "unknown"
    system_actor.set(f"cli:{operator}")


def _as_the_system() -> None:
    """A server or a worker acts for nobody at the console: what it records unasked (a mail
    taken in, a monthly report) is the system's, and a request's is its user's. What it
    writes under `var/` (the job queue, the mail spool) is readable by its owner only, as
    the database is."""
    from concord.audit.service import system_actor

    system_actor.set("system")
    os.umask(0o077)


def _session():  # type: ignore[no-untyped-def]
    from concord.db import session_scope

    return session_scope()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_json_value) + "\n")


def _json_value(value: Any) -> str:
    """A time as the API writes it (ISO 8601, UTC as "Z"); anything else as its text."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


# --- setup and running ---------------------------------------------------------------------


def _keep_private(url: str) -> None:
    """A SQLite database file readable by its owner only (SQLite gives its journal files
    the same permissions)."""
    from concord.db import sqlite_file

    path = sqlite_file(url)
    if path is not None and path.exists():
        path.chmod(0o600)


@app.command()
def init(
    demo: Annotated[bool, typer.Option(help="Load the demo network (made-up data).")] = False,
) -> None:
    """Create or upgrade the database schema (and optionally load the demo network)."""
    from concord.config import get_settings
    from concord.migrate import current_revision, make_folder, upgrade

    settings = get_settings()
    if not settings.var.exists():
        # it holds the database (password and token hashes, RED reports): its owner's only
        settings.var.mkdir(parents=True, mode=0o700)
    make_folder(settings.database_url)
    before = current_revision(settings.database_url)
    upgrade(settings.database_url)
    after = current_revision(settings.database_url)
    _keep_private(settings.database_url)
    if before == after:
        out.print(f"Database is up to date (revision {after}).")
    else:
        out.print(f"Database schema upgraded from {before or 'empty'} to {after}.")
    if demo:
        from concord.demo import load_demo
        from concord.site import is_demo

        with _session() as session:
            if is_demo(session):
                logins_file = settings.var / "demo-logins.txt"
                out.print(f"The demo network is loaded already; logins: {logins_file}")
                return
            with out.status("Loading the demo network..."):
                logins = load_demo(session)
        from concord.db import session_factory
        from concord.demo import load_demo_reports

        with out.status("Sending in the demo reports..."):
            reports = load_demo_reports(session_factory())
        out.print(
            f"Demo network loaded, with {reports.events} events from {reports.submissions} "
            f"submissions ({reports.cross_state} indicators seen in several states"
            + ("; the centre opened a case about one of them" if reports.cases else "")
            + f"), and {reports.reports} reports of the last seven days. First logins:"
        )
        for username, password, role, org in logins.first:
            out.print(f"  {username:<22} {password:<24} ({role} at {org})")
        out.print(f"All demo logins: {logins.path}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the background worker in-process.")
    ] = True,
    smtp_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Also accept abuse reports by SMTP on this port "
            "(addresses: CONCORD_INTAKE_ADDRESSES).",
        ),
    ] = None,
    smtp_host: Annotated[str, typer.Option(help="Address of the SMTP listener.")] = "127.0.0.1",
) -> None:
    """Run the web UI and the REST API (and, by default, the background worker)."""
    import uvicorn

    _as_the_system()
    _ready_to_run()

    from concord.errors import ConcordError
    from concord.web.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for where, number in ((host, port), *([(smtp_host, smtp_port)] if smtp_port else [])):
        # before anything starts or says it runs: a port in use is the common first mistake
        reason = _cannot_listen(where, number)
        if reason:
            raise ConcordError(f"cannot listen on {where}:{number}: {reason}")
    embedded = None
    if worker:
        from concord.jobs.worker import EmbeddedWorker

        embedded = EmbeddedWorker()
        embedded.start()
    listener = None
    if smtp_port:
        from concord.intake.smtp import SmtpSettings, start_listener

        listener = start_listener(SmtpSettings.from_env(smtp_host, smtp_port))
        out.print(f"SMTP intake on {smtp_host}:{smtp_port}")
    out.print(
        f"Concord {__version__} on http://{host}:{port}/  (API docs: http://{host}:{port}/api/docs)"
    )
    try:
        # no lifespan: the app has no start-up or shutdown work, and a second Ctrl-C during a
        # request would otherwise log a traceback from cancelling the lifespan task
        uvicorn.run(
            create_app(),
            host=host,
            port=port,
            log_level="info",
            proxy_headers=True,
            lifespan="off",
        )
    finally:
        if listener is not None:
            listener.stop()
        if embedded is not None:
            embedded.stop()


def _ready_to_run() -> None:
    """Before a server or a worker starts: the settings read per request or per job, and a
    database at this release's schema. Found wrong later, each request or job would fail
    while the process looked healthy."""
    from concord.config import get_settings
    from concord.errors import ConfigurationError
    from concord.intake.prepare import DedupPolicy
    from concord.migrate import schema_behind
    from concord.reports.service import min_count

    DedupPolicy.from_env()
    min_count()
    url = get_settings().database_url
    behind = schema_behind(url)
    if behind:
        raise ConfigurationError(f"the database {_shown(url)} {behind}")


def _shown(url: str) -> str:
    """A database URL as it may be printed: without its password."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _cannot_listen(host: str, port: int) -> str:
    """Why a server could not listen on host:port, or "" when it can."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"unknown address ({exc.strerror or exc})"
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            return "the port is in use (another server?)" if taken else str(exc.strerror or exc)
    return ""


@app.command("worker")
def worker_cmd(
    once: Annotated[bool, typer.Option(help="Run the jobs that are due now, then exit.")] = False,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Worker threads.")] = 2,
) -> None:
    """Run a background worker (several may share one PostgreSQL database)."""
    from concord.jobs.worker import run_worker

    _as_the_system()
    _ready_to_run()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    count = run_worker(threads=threads, once=once)
    if once:
        out.print(f"Ran {count} job(s).")


# --- organisations -------------------------------------------------------------------------


def _org_dict(org: Any, parents: dict[int, str]) -> dict[str, Any]:
    return {
        "slug": org.slug,
        "kind": org.kind,
        "name_en": org.name_en,
        "name_ru": org.name_ru,
        "country": org.country,
        "sector": org.sector,
        "language": org.language,
        "parent": parents.get(org.parent_id) if org.parent_id else None,
        "tlp": org.tlp,
    }


@org_app.command("add")
def org_add(
    slug: Annotated[
        str, typer.Argument(metavar="SLUG", help="Short unique name, such as kz-cert.")
    ],
    kind: Annotated[str, typer.Option(help="centre, national-body, owner or partner.")],
    name_en: Annotated[str, typer.Option("--name-en", help="Name in English.")],
    name_ru: Annotated[str, typer.Option("--name-ru", help="Name in Russian.")] = "",
    country: Annotated[str | None, typer.Option(help="ISO 3166-1 alpha-2 code.")] = None,
    sector: Annotated[str | None, typer.Option(help="Sector, such as finance.")] = None,
    language: Annotated[str, typer.Option(help="Preferred language: en or ru.")] = "en",
    parent: Annotated[str | None, typer.Option(help="Slug of the national body.")] = None,
    tlp: Annotated[str | None, typer.Option(help="TLP of the record (default by kind).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add an organisation."""
    from concord.orgs import service

    with _session() as session:
        org = service.create_org(
            session,
            None,
            service.OrgInput(slug, kind, name_en, name_ru, country, sector, language, parent, tlp),
        )
        data = _org_dict(org, service.parent_slugs(session, [org]))
    if as_json:
        _print_json(data)
    else:
        out.print(f"Added {data['kind']} {data['slug']}.")


def _whole(name: str, rows: list[dict[str, Any]]) -> Column:
    """A column of identifiers that are copied into other commands: never cut short."""
    width = max([len(name)] + [len(str(r.get(name) or "")) for r in rows])
    return Column(name, no_wrap=True, min_width=width)


@org_app.command("list")
def org_list(
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    country: Annotated[str | None, typer.Option(help="Only this country.")] = None,
    parent: Annotated[str | None, typer.Option(help="Only constituents of this body.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List organisations."""
    from sqlalchemy import select

    from concord.orgs import service
    from concord.orgs.model import Organization

    with _session() as session:
        if parent:
            service.get_org_for_write(session, parent)
        # the service's filters: a kind or country nothing can match is told, as the API does
        orgs = service.list_orgs(
            session, _operator(), kind=kind, country=country, parent=parent, limit=10**9
        )
        orgs.sort(key=lambda o: (o.kind, o.slug))
        slugs = {i: s for i, s in session.execute(select(Organization.id, Organization.slug))}
        rows = [_org_dict(o, slugs) for o in orgs]
    if as_json:
        _print_json(rows)
        return
    table = Table(_whole("slug", rows), "kind", "country", _whole("parent", rows), "name", "TLP")
    for r in rows:
        table.add_row(
            r["slug"], r["kind"], r["country"] or "", r["parent"] or "", r["name_en"], r["tlp"]
        )
    out.print(table)
    out.print(f"{len(rows)} organisation(s)")


@org_app.command("show")
def org_show(
    slug: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show an organisation with its contacts and asset counts."""
    from sqlalchemy import func, select

    from concord.orgs import service
    from concord.orgs.model import Asset, Contact

    with _session() as session:
        org = service.get_org_for_write(session, slug)
        data = _org_dict(org, service.parent_slugs(session, [org]))
        data["contacts"] = [
            {
                "name": c.name,
                "email": c.email,
                "phone": c.phone,
                "role": c.role,
                "language": c.language,
            }
            for c in session.scalars(select(Contact).where(Contact.org_id == org.id))
        ]
        data["assets"] = {
            kind: n
            for kind, n in session.execute(
                select(Asset.kind, func.count()).where(Asset.org_id == org.id).group_by(Asset.kind)
            )
        }
    if as_json:
        _print_json(data)
        return
    for key in (
        "slug",
        "kind",
        "name_en",
        "name_ru",
        "country",
        "sector",
        "language",
        "parent",
        "tlp",
    ):
        out.print(f"{key:>9}: {data[key] or ''}")
    out.print("contacts:")
    for c in data["contacts"]:
        out.print(f"  {c['name']} <{c['email']}> {c['phone'] or ''} ({c['role']}, {c['language']})")
    out.print("assets: " + (", ".join(f"{k} {v}" for k, v in data["assets"].items()) or "none"))


# --- users and tokens ----------------------------------------------------------------------


@user_app.command("add")
def user_add(
    username: str,
    org: Annotated[str, typer.Option(help="Slug of the user's organisation.")],
    role: Annotated[str, typer.Option(help="admin, analyst, reader or owner-contact.")],
    password: Annotated[str | None, typer.Option(help="Password (asked when omitted).")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    full_name: Annotated[str, typer.Option("--full-name", help="Full name.")] = "",
    language: Annotated[str | None, typer.Option(help="en or ru.")] = None,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="API-only account without a password.")
    ] = False,
) -> None:
    """Add a user account."""
    from concord.access import service
    from concord.errors import ConcordError

    if password is not None and no_password:
        raise ConcordError("give either --password or --no-password, not both")
    if password is None and not no_password:
        if not sys.stdin.isatty():  # nobody to ask: a script must say which it wants
            raise ConcordError("no password given: use --password P, or --no-password")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session() as session:
        service.create_user(
            session,
            None,
            service.UserInput(username, org, role, password, full_name, email, language),
        )
    out.print(f"Added {role} {username} at {org}.")


def _new_password(password: str | None) -> str:
    """The password given, or asked on a terminal (a script must give it)."""
    from concord.errors import ConcordError

    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise ConcordError("no password given: use --password P")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("password")
def user_password(
    username: str,
    password: Annotated[str | None, typer.Option(help="Password (asked when omitted).")] = None,
) -> None:
    """Set a user's password, lift a lockout and close the user's web sessions.

    The way back in for an admin who forgot the password or is locked out after failed
    logins."""
    from concord.access import service

    secret = _new_password(password)
    with _session() as session:
        service.set_password(session, username, secret)
    out.print(f"Password of {username} set; the account is unlocked.")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable an account: it can no longer sign in, and its tokens and sessions end."""
    from concord.access import service

    with _session() as session:
        service.set_active(session, None, username, False)
    out.print(f"Disabled {username}; its tokens are revoked.")


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable an account again (its revoked tokens stay revoked)."""
    from concord.access import service

    with _session() as session:
        service.set_active(session, None, username, True)
    out.print(f"Enabled {username}.")


@user_app.command("unlock")
def user_unlock(username: str) -> None:
    """Lift the lock failed sign-ins put on an account, before it ends by itself."""
    from concord.access import service

    with _session() as session:
        service.unlock(session, None, username)
    out.print(f"Unlocked {username}; it may sign in again at once.")


@user_app.command("list")
def user_list(
    org: Annotated[str | None, typer.Option(help="Only users of this organisation.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List user accounts."""
    from sqlalchemy import select

    from concord.access.model import User
    from concord.orgs.model import Organization

    with _session() as session:
        stmt = select(User, Organization.slug).join(Organization, Organization.id == User.org_id)
        if org:
            from concord.orgs.service import get_org_for_write

            get_org_for_write(session, org)
            stmt = stmt.where(Organization.slug == org)
        rows = [
            {
                "username": u.username,
                "org": s,
                "role": u.role,
                "email": u.email,
                "active": u.active,
                "last_login": u.last_login,
            }
            for u, s in session.execute(stmt.order_by(Organization.slug, User.username))
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table(_whole("username", rows), _whole("org", rows), "role", "active", "last login")
    for r in rows:
        table.add_row(
            r["username"],
            r["org"],
            r["role"],
            "yes" if r["active"] else "no",
            str(r["last_login"] or ""),
        )
    out.print(table)


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="Username the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    scopes: Annotated[str, typer.Option(help="Comma-separated: read, write, admin.")] = "read",
) -> None:
    """Create an API token; the token is printed once, on the last line."""
    from concord.access import service

    with _session() as session:
        # split here: the option is a choice, and an empty one is refused, not read as read
        chosen = service.parse_scopes(scopes.split(","))
        secret, token = service.create_token(session, None, user, name, chosen)
        token_id, held = token.id, token.scopes.replace(",", ", ")
    err.print(f"Token {token_id} for {user} with scopes {held}; it is shown only now.")
    sys.stdout.write(secret + "\n")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Revoke an API token."""
    from concord.access import service

    with _session() as session:
        token = service.get_token(session, token_id)
        earlier = token.revoked_at
        service.revoke_token(session, None, token_id)
    if earlier is not None:
        out.print(f"Token {token_id} was revoked already, at {earlier:%Y-%m-%d %H:%M} UTC.")
    else:
        out.print(f"Token {token_id} revoked.")


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List API tokens (never their secrets): the ids `token revoke` takes."""
    from concord.access import service
    from concord.db import as_utc, utcnow

    now = utcnow()

    def state(token: Any) -> str:
        if token.revoked_at:
            return "revoked"
        if token.expires_at and as_utc(token.expires_at) <= now:
            return "expired"
        return "active"

    with _session() as session:
        if user:
            service.get_user(session, None, user)  # a user nobody has is a mistake, said so
        rows = [
            {
                "id": t.id,
                "user": username,
                "name": t.name,
                "scopes": t.scopes.split(","),
                "state": state(t),
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "expires_at": t.expires_at,
                "revoked_at": t.revoked_at,
            }
            for t, username in service.list_tokens(
                session, _operator(), username=user, limit=1_000_000
            )
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", _whole("user", rows), "name", "scopes", "last used", "state")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["user"],
            r["name"],
            ",".join(r["scopes"]),
            _json_value(r["last_used_at"]) if r["last_used_at"] else "",
            r["state"],
        )
    out.print(table)


def _operator() -> Principal:
    """The operator at the console: sees the whole network, like the centre's admins."""
    from concord.access.model import Principal, Role, TokenScope

    return Principal(0, "cli", None, "centre", None, Role.ADMIN, frozenset(TokenScope))


# --- assets and lookup ---------------------------------------------------------------------


@assets_app.command("import")
def assets_import(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or JSON asset list."),
    ],
    owner: Annotated[
        str, typer.Option(help="Slug of the organisation holding the assets (an owner, mostly).")
    ],
    valid_only: Annotated[
        bool, typer.Option("--valid-only", help="Import the valid rows even if others fail.")
    ] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or json (else detected).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import an owner's assets: prefixes, ASNs, domains, e-mail domains, software."""
    from concord.errors import ConcordError
    from concord.orgs import readers, service

    if fmt is not None and fmt.strip().lower() not in ("csv", "json"):
        raise ConcordError(f"unknown asset file format {fmt!r}; use csv or json")
    data = file.read_bytes()
    total = data.count(b"\n") or None
    with _session() as session:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=as_json or total is None or total < 2000,
            transient=True,
        )
        with progress:
            task = progress.add_task(f"Reading {file.name}", total=total)
            report = service.import_assets(
                session,
                None,
                owner,
                readers.read(data, file.name, fmt),
                valid_only=valid_only,
                progress=lambda n: progress.advance(task, n),
            )
    if as_json:
        _print_json(report.as_dict())
    else:
        for problem in report.refused:
            err.print(f"[red]refused[/] {problem.location}: {problem.reason}", highlight=False)
        verb = "Imported" if report.imported else "Nothing imported"
        out.print(
            f"{verb}: {report.added} added, {report.changed} changed, "
            f"{report.unchanged} unchanged, {len(report.refused)} refused."
        )
        if not report.imported:
            err.print("Fix the refused rows, or pass --valid-only to import the others.")
    if report.refused and not report.imported:
        raise typer.Exit(1)


def _naming(receipt: Any) -> str:
    """A refused file's reason, after the file's name: the receipt names it beside the
    reason, which does not repeat it."""
    return f"{receipt.filename}: {receipt.errors[0]['reason']}"


def _tell(receipt: Any, say: Callable[..., None]) -> None:
    """A receipt on the console: its line, its parts' (a mail's attachments, an archive's
    files), and its first errors with their locations."""
    say(_receipt_line(receipt), markup=False, highlight=False)
    for part in receipt.parts:
        say(f"  attachment {_receipt_line(part)}", markup=False, highlight=False)
    for error in receipt.errors[:20]:
        where = ":".join(
            str(error[k])
            for k in ("source", "line", "pointer", "field")
            if error.get(k) not in (None, "")
        )
        err.print(f"  {where}: {error['reason']}", markup=False, highlight=False)
    if len(receipt.errors) > 20:
        err.print(f"  ... and {len(receipt.errors) - 20} more errors")


def _receipt_line(receipt: Any) -> str:
    return (
        f"{receipt.filename}: {receipt.format}, receipt {receipt.id}: "
        f"{receipt.accepted} accepted, {receipt.duplicates} duplicate, "
        f"{receipt.rejected} rejected"
        + (f", {receipt.skipped} naming no observable" if receipt.skipped else "")
        + (f", {receipt.not_taken_in} files not taken in" if receipt.not_taken_in else "")
        + (f", {receipt.shared} shared with their owners" if receipt.shared else "")
        + (f" ({receipt.note})" if receipt.note else "")
    )


def _ingest_summary(totals: dict[str, Any]) -> str:
    """The last line of several receipts: what was read, and what was not."""
    count = len(totals["files"])
    said = [f"{count} file" + ("" if count == 1 else "s")]
    if totals["not_taken_in"]:
        said.append(f"{totals['not_taken_in']} not taken in")
    if hidden := len(totals["skipped_files"]):
        said.append(f"{hidden} hidden file" + ("" if hidden == 1 else "s") + " skipped")
    return (
        ", ".join(said)
        + f": {totals['accepted']} accepted, {totals['duplicates']} duplicate, "
        + f"{totals['rejected']} rejected"
        + (f", {totals['skipped']} naming no observable" if totals["skipped"] else "")
    )


@app.command()
def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Files, directories, zip or gzip archives."),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="Declare the format (else detected); `concord formats` lists them."
        ),
    ] = None,
    tlp: Annotated[
        str | None,
        typer.Option(
            help="TLP of the submission: clear, green, amber or amber+strict (RED is for "
            "named people: the API or the intake page; default: each record's own marking, "
            "else amber)."
        ),
    ] = None,
    as_org: Annotated[
        str | None, typer.Option("--as", help="Slug of the reporting organisation (required here).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
    profile: Annotated[
        Path | None,
        typer.Option(help="Read CSV with this YAML feed profile (see `concord formats`)."),
    ] = None,
    share_owners: Annotated[
        bool,
        typer.Option(
            "--share-owners",
            help="Share each TLP:AMBER event with the owner of the resource it concerns.",
        ),
    ] = False,
) -> None:
    """Take in reports of attacks and incidents and print a receipt.

    Every file is read, even when one of them cannot be: a file whose format cannot be told,
    a broken or refused archive, or one whose intake fails, is reported and skipped, and the
    command then exits with status 1. It also does when every record of a file was rejected.

    A mail (.eml) whose attachments are feeds is taken in as them: each is a submission of
    its own, printed as an attachment of the mail, whose receipt counts them."""
    from concord.db import session_factory
    from concord.errors import ConcordError
    from concord.intake.readers import Reader, ReaderError
    from concord.intake.registry import profile_reader
    from concord.intake.service import check_options, ingest_paths

    totals: dict[str, Any] = {
        "accepted": 0,
        "duplicates": 0,
        "rejected": 0,
        "skipped": 0,
        "errors": [],
        "files": [],
        "not_taken_in": 0,  # files refused or failed
        "skipped_files": [],  # hidden ones in the folders given
    }
    took_nothing = False  # a file none of whose records went in (Receipt.took_nothing)
    try:
        reader: Reader | None = None
        if profile is not None:
            if fmt:
                raise ConcordError("give either --format or --profile, not both")
            try:
                reader = profile_reader(profile)
            except ReaderError as exc:
                raise ConcordError(f"{profile}: {exc}") from None
        check_options(  # a read alone: it waits for no writer's lock
            session_factory(readonly=True),
            None,
            fmt=fmt,
            tlp=tlp,
            as_org=as_org,
            share_owners=share_owners,
        )

        progress = Progress(
            TextColumn("{task.description}"),
            TextColumn("{task.completed} records"),
            TimeElapsedColumn(),
            console=err,
            # not on a pipe or a log file: there it would only leave a stray blank line
            disable=as_json or not err.is_terminal,
            transient=True,
        )
        # On a terminal the receipts go through the progress display, which clears its line
        # first; elsewhere they go to stdout, apart from the display.
        say = progress.console.print if out.is_terminal and err.is_terminal else out.print
        try:
            with progress:
                task = progress.add_task("Ingesting", total=None)
                for receipt in ingest_paths(
                    session_factory(),
                    None,
                    paths,
                    fmt=fmt,
                    tlp=tlp,
                    as_org=as_org,
                    channel="cli",
                    progress=lambda n: progress.advance(task, n),
                    starting=lambda name: progress.update(task, description=name, completed=0),
                    hidden=totals["skipped_files"],
                    reader=reader,
                    share_owners=share_owners,
                ):
                    data = receipt.as_dict()
                    totals["files"].append(data)
                    totals["errors"].extend(data["errors"])
                    took_nothing = took_nothing or receipt.took_nothing
                    if receipt.status in ("refused", "failed"):
                        totals["not_taken_in"] += 1
                        if not as_json:
                            err.print(f"not taken in: {_naming(receipt)}", markup=False)
                        continue
                    for key in ("accepted", "duplicates", "rejected", "skipped", "not_taken_in"):
                        totals[key] += data[key]  # a mail's, with its attachments
                    # those of a mail's attached archives, as those of the folders given
                    totals["skipped_files"].extend(data["skipped_files"])
                    if not as_json:
                        _tell(receipt, say)
        except KeyboardInterrupt:
            # typer would end silently; what was committed is kept, and the same command resumes
            err.print(
                "interrupted: what was read so far is kept; run the same command again to go on "
                "where it stopped"
            )
            if as_json:  # the receipts of the files taken in before
                _print_json(totals)
            raise typer.Exit(130) from None
        files = totals["files"]
        if as_json:
            _print_json(totals)
        elif len(files) > 1 or totals["skipped_files"]:
            say(_ingest_summary(totals), markup=False, highlight=False)
    except ConcordError as exc:
        if as_json:  # a script reading stdout gets the receipt's shape, saying why
            for fault in (exc, *exc.more):
                where = fault.locations[0].as_dict() if fault.locations else {}
                totals["errors"].append({**where, "reason": fault.message})
            _print_json(totals)
        raise
    refused = any(f["status"] in ("refused", "failed") for f in files)
    if refused or took_nothing:
        raise typer.Exit(1)


@app.command()
def formats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The intake formats: the built-in ones and the feed profiles of the profiles folder."""
    from concord.config import get_settings
    from concord.intake.registry import builtin_readers, user_readers

    folder = get_settings().feed_profiles
    profiles, problems = user_readers(folder)
    rows = [
        {"name": r.name, "origin": "built-in", "description": r.description}
        for r in builtin_readers().values()
    ] + [
        {"name": r.name, "origin": "profile", "description": r.description}
        for r in profiles.values()
    ]
    broken = [{"file": p.path, "reason": p.reason} for p in problems]
    if as_json:
        _print_json({"formats": rows, "profiles_folder": str(folder), "problems": broken})
    else:
        for row in rows:
            out.print(f"{row['name']:<16} {row['origin']:<9} {row['description']}", markup=False)
        out.print(f"Feed profiles are read from {folder}", markup=False, highlight=False)
        for problem in broken:
            err.print(f"profile {problem['file']} not used: {problem['reason']}", markup=False)
    if problems:
        raise typer.Exit(1)


@app.command()
def correlate(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Run a correlation pass now: flag cross-state indicators, alert, update campaigns.

    Flags the indicators two or more states reported, alerts their analysts and updates the
    campaigns. The worker runs one every five minutes, and one within a minute of each
    intake."""
    from concord.events import correlation

    with _session() as session:
        result = correlation.correlate(session)
    if as_json:
        _print_json(result.as_dict())
        return
    out.print(f"Correlation: {result.summary()}", markup=False, highlight=False)


@app.command()
def whois(
    query: Annotated[
        str, typer.Argument(metavar="QUERY", help="IP address, domain, e-mail address or ASN.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Who owns an IP address, domain or AS number (with national body and contacts)."""
    from concord.errors import ConcordError, InvalidInput
    from concord.orgs.api import whois_lookup

    with _session() as session:
        try:
            result = whois_lookup(session, _operator(), query)
        except InvalidInput as exc:  # the API's parameter name means nothing here
            raise ConcordError(exc.message) from None
    if as_json:
        _print_json(result.model_dump())
        return
    out.print(f"{result.query} ({result.kind}) matches {result.matched}")
    for o in result.owners:
        nb = o.national_body
        where = f", {o.country}" if o.country else ""
        out.print(f"  owner: {o.name_en} [{o.slug}]{where}", markup=False)
        if nb:
            out.print(f"  national body: {nb.name_en} [{nb.slug}]", markup=False)
        for c in o.contacts:
            out.print(
                f"  contact: {c.name} <{c.email}> {c.phone or ''} ({c.role}, {c.language})",
                markup=False,
            )


def _write_report(path: Path, text: str, *, private: bool) -> None:
    """Write a report file; one above TLP:CLEAR readable by its owner only, whatever the
    umask and whoever could read the file it replaces."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        if private and stat.S_ISREG(os.fstat(fd).st_mode):  # not a pipe or a terminal's
            os.fchmod(fd, 0o600)
        fh.write(text)


@app.command()
def report(
    period: Annotated[
        str, typer.Option(help="2024-07-15, 2024-W28, 2024-07 or 2024-07-01..2024-07-10 (UTC).")
    ],
    scope: Annotated[str, typer.Option(help="network, or a state's country code.")] = "network",
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="html, json or csv (default: from --out's name, else html)."),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", dir_okay=False, help="Write here, not to stdout.")
    ] = None,
    language: Annotated[str, typer.Option(help="en or ru (for HTML).")] = "en",
    store: Annotated[bool, typer.Option("--store", help="Also keep it in the database.")] = False,
) -> None:
    """Build a generalized report of the whole network or of one state."""
    from concord import i18n
    from concord.db import session_scope
    from concord.errors import FaultLocation, Faults, InvalidInput
    from concord.reports import render, service

    def known_language() -> None:
        if language not in i18n.LANGUAGES:
            raise InvalidInput(
                f"unknown language {language!r}; use one of {', '.join(i18n.LANGUAGES)}",
                FaultLocation(field="language"),
            )

    faults = Faults()  # the output's faults at once; the period's and scope's follow
    fmt = faults.check(lambda: service.format_for(fmt, out_file), "html")
    faults.check(known_language, None)
    faults.raise_any()
    # Read-only unless storing: a long report must not hold SQLite's write lock.
    stored_id = None
    with session_scope(readonly=not store) as session:
        built = service.build_report(session, None, period, scope)
        if store:
            stored_id = service.store(session, built).id
    if stored_id is not None:  # on stderr: stdout may be the report itself
        err.print(
            f"Stored as report {stored_id} (GET /api/v1/reports/{stored_id}).",
            markup=False,
            highlight=False,
        )
    if built.generated_at < built.period.end:  # on stderr: stdout may be the report itself
        err.print(
            f"note: the period {built.period.label} is not over: the counts run to now and "
            f"are compared with the whole of {built.period.previous_label}",
            markup=False,
            highlight=False,
        )
    text = render.render(built, fmt, language)
    if not text.endswith("\n"):
        text += "\n"
    if out_file is None:
        sys.stdout.write(text)
        return
    _write_report(out_file, text, private=built.tlp != "clear")
    err.print(
        f"TLP:{built.tlp.upper()} report of {built.scope} for {built.period.label} "
        f"written to {out_file}",
        markup=False,
        highlight=False,
    )


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain; says which records were altered or removed."""
    from concord.audit import service

    with _session() as session:
        result = service.verify(session)
    if result.ok:
        out.print(f"Audit log intact: {result.checked} record(s) verified.")
        return
    for problem in result.problems:
        err.print(f"[red]{problem}[/]", highlight=False)
    err.print(
        f"Audit log damaged: {len(result.problems)} problem(s) in {result.checked} record(s)."
    )
    raise typer.Exit(1)


def _database_problem(exc: Exception) -> str | None:
    """An operator's first mistakes with the database, as one line instead of a driver's
    message with its SQL: no schema yet, a server out of reach, a URL that is not one."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError

    from concord.config import get_settings
    from concord.db import sqlite_file

    try:
        url = get_settings().database_url
    except Exception:
        url = "CONCORD_DATABASE_URL"
    shown = _shown(url)
    text = str(getattr(exc, "orig", None) or exc)
    if isinstance(exc, (OperationalError, ProgrammingError)):
        if "permission denied" in text:  # the driver's first line names what was refused
            first = text.strip().splitlines()[0]
            return f"the database user of {shown} may not do this: {first}"
        if "no such table" in text or ("relation" in text and "does not exist" in text):
            return f"the database {shown} has no schema yet: run `concord init` first"
        if "no such column" in text or ("column" in text and "does not exist" in text):
            return (
                f"the schema of the database {shown} is older than this release: "
                "run `concord init` to upgrade it"
            )
        path = sqlite_file(url) if "unable to open database file" in text else None
        if path is not None and not path.parent.is_dir():
            return (
                f"the database {shown} does not exist yet (no folder {str(path.parent)!r}): "
                "run `concord init` first, or check CONCORD_DATABASE_URL"
            )
        if isinstance(exc, OperationalError):
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            return f"cannot use the database {shown}: {first}"
    if isinstance(exc, (ArgumentError, NoSuchModuleError)) or (
        isinstance(exc, ModuleNotFoundError) and not url.startswith(("sqlite", "postgresql"))
    ):
        return (
            f"CONCORD_DATABASE_URL {shown!r} is not a database Concord uses: give "
            "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )
    return None


def main() -> None:
    """Entry point: errors become one readable line and a non-zero exit, never a traceback."""
    # Typer (0.29) carries its own copy of Click, whose usage errors these are.
    from typer._click import exceptions as usage

    from concord.errors import ConcordError

    # What the services log goes to the server's log under `serve` and `worker` (their own
    # handlers); a console command says what went wrong in its own words instead.
    logging.getLogger("concord").addHandler(logging.NullHandler())
    try:
        code = app(standalone_mode=False, prog_name="concord")
    except usage.NoArgsIsHelpError:  # `concord org`: its help, printed already
        sys.exit(2)
    except usage.UsageError as exc:  # a missing or wrong option, an unknown command
        command = exc.ctx.command_path if exc.ctx is not None else "concord"
        err.print(
            f"error: {exc.format_message()} (see '{command} --help')",
            highlight=False,
            markup=False,
        )
        sys.exit(2)
    except usage.ClickException as exc:  # e.g. a file argument that cannot be opened
        err.print(f"error: {exc.format_message()}", highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("interrupted")
        sys.exit(130)
    except ConcordError as exc:
        for fault in (exc, *exc.more):  # one line per fault of the input
            err.print(f"error: {fault}", highlight=False, markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except OSError as exc:  # a path the operator gave: which one, and why
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"error: {where}{exc.strerror or exc}", highlight=False, markup=False)
        sys.exit(1)
    except Exception as exc:  # last resort: a readable line, the detail in the log
        known = _database_problem(exc)
        if known is not None:
            err.print(f"error: {known}", highlight=False, markup=False)
            sys.exit(1)
        logging.getLogger("concord").debug("unexpected error", exc_info=True)
        err.print(f"error: {type(exc).__name__}: {exc}", highlight=False, markup=False)
        sys.exit(1)
    # a command's own exit code (typer.Exit), which the non-standalone call hands back
    sys.exit(code if isinstance(code, int) else 0)


def _reflow_help(group: typer.Typer) -> None:
    """Each command's help from its docstring, a paragraph to a line: the help keeps a
    docstring's line breaks, cut for the source, where the terminal would cut elsewhere."""
    for info in group.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            paragraphs = inspect.cleandoc(info.callback.__doc__).split("\n\n")
            info.help = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _reflow_help(sub.typer_instance)


_reflow_help(app)
