"""The console's pages: overview, jobs, job, dead letters, guard, login.

Every page needs a logged-in user; every POST needs the session's CSRF token, and the
actions that change something (retry, purge, reset) need an operator. Pages are
server-rendered; ``static/console.js`` only adds an auto-refresh switch and a
confirmation before destructive actions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import dramatiq
import structlog
from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from certsms.worker.deadletter import DeadLetters
from certsms.worker.errors import JobError
from certsms.worker.evidence import EvidenceStore
from certsms.worker.guard import ProviderGuard
from certsms.worker.jobs.status import JobStatus
from certsms.worker.web.console import data
from certsms.worker.web.console.session import (
    ConsoleSessionInterface,
    check_csrf,
    clear_failures,
    csrf_token,
    current_user_name,
    log_in,
    record_failure,
    throttled,
)
from certsms.worker.web.console.users import ConsoleUser, authenticate, console_users
from certsms.worker.web.context import web_context

log = structlog.get_logger(__name__)

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)

F = TypeVar("F", bound=Callable[..., Any])
Page = str | WerkzeugResponse | tuple[str, int]


@bp.record_once
def _use_console_sessions(state: Any) -> None:
    state.app.session_interface = ConsoleSessionInterface()


@bp.before_request
def _load_user() -> Page | None:
    context = web_context()
    users = console_users(context.settings)
    if not users:
        return render_template("console/disabled.html"), 404
    name = current_user_name()
    g.console_user = users.get(name) if name else None
    if request.method == "POST":
        check_csrf()
    return None


@bp.app_template_global("csrf_token")
def _csrf_token() -> str:
    return csrf_token()


@bp.app_template_global("phone")
def _phone(number: str) -> str:
    user: ConsoleUser | None = g.get("console_user")
    return data.show_phone(number, sees_phones=bool(user and user.sees_phones))


def login_required(view: F) -> F:
    """Send anonymous visitors to the login page (and back after)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("console_user") is None:
            return redirect(url_for("console.login", next=request.full_path))
        return view(*args, **kwargs)

    return cast(F, wrapper)


def operator_required(view: F) -> F:
    """Refuse (403) users who may only look."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user: ConsoleUser | None = g.get("console_user")
        if user is None:
            return redirect(url_for("console.login"))
        if not user.may_act:
            abort(403, description="only operators may do this")
        return view(*args, **kwargs)

    return cast(F, wrapper)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Page:
    """The login form; a right password starts a session."""
    error = None
    status = 200
    if request.method == "POST":
        context = web_context()
        name = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if throttled(context.redis, context.settings, name):
            error, status = "Too many wrong passwords: try again in a few minutes.", 429
        else:
            user = authenticate(console_users(context.settings), name, password)
            if user is None:
                record_failure(context.redis, context.settings, name)
                log.warning("console_login_failed", user=name[:100])
                error, status = "Wrong name or password.", 401
            else:
                clear_failures(context.redis, context.settings, name)
                log_in(user)
                log.info("console_logged_in", user=user.name, role=user.role)
                target = request.args.get("next", "")
                safe = target.startswith("/console/") and not target.startswith("//")
                return redirect(target if safe else url_for("console.overview"))
    return render_template("console/login.html", error=error), status


@bp.post("/logout")
def logout() -> WerkzeugResponse:
    """End the session."""
    from flask import session

    session.clear()
    return redirect(url_for("console.login"))


@bp.get("/")
@login_required
def overview() -> Page:
    """Queues, jobs by status, the guard, credits and evidence lag."""
    return render_template("console/overview.html", view=data.overview(web_context()))


@bp.get("/jobs")
@login_required
def jobs() -> Page:
    """The jobs list: one search box, filters and cursor paging."""
    args = request.args
    filters = {k: args.get(k, "").strip() for k in ("q", "status", "kind", "since", "until")}
    query = data.smart_query(filters["q"])
    if "job_id" in query:
        return redirect(url_for("console.job", job_id=query["job_id"]))
    error = None
    page = data.JobPage([], None)
    try:
        page = data.find_jobs(
            web_context(),
            status=filters["status"] or None,
            kind=filters["kind"] or None,
            reference=query.get("reference"),
            idmensaje=query.get("idmensaje"),
            phone=query.get("phone"),
            since=filters["since"] or None,
            until=filters["until"] or None,
            cursor=args.get("cursor") or None,
        )
    except data.SearchError as exc:
        error = exc
    return render_template(
        "console/jobs.html",
        page=page,
        filters=filters,
        error=error,
        statuses=[str(s) for s in JobStatus],
    ), (400 if error else 200)


@bp.get("/jobs/<job_id>")
@login_required
def job(job_id: str) -> Page:
    """One job: its record, recipients, timeline, provider answers and evidence."""
    context = web_context()
    record = context.store.get(job_id)
    if record is None:
        return render_template("console/not_found.html", what=f"job {job_id[:40]}"), 404
    created = data.parse_time("created_at", record.created_at) if record.created_at else None
    return render_template(
        "console/job.html",
        job=record,
        events=context.store.job_events(job_id, since=created),
        inbox=context.store.inbox(job_id),
        evidence=data.evidence_of(context, record),
        checks=None,
    )


@bp.post("/jobs/<job_id>/verify")
@login_required
def verify(job_id: str) -> Page:
    """Re-hash the job's stored files now and show the result on the job page."""
    context = web_context()
    record = context.store.get(job_id)
    if record is None:
        return render_template("console/not_found.html", what=f"job {job_id[:40]}"), 404
    checks = EvidenceStore(context.settings).verify(job_id)
    log.info(
        "console_evidence_verified",
        job_id=job_id,
        files=len(checks),
        mismatches=sum(not c.ok for c in checks),
    )
    created = data.parse_time("created_at", record.created_at) if record.created_at else None
    return render_template(
        "console/job.html",
        job=record,
        events=context.store.job_events(job_id, since=created),
        inbox=context.store.inbox(job_id),
        evidence=data.evidence_of(context, record),
        checks=checks,
    )


@bp.get("/jobs/<job_id>/evidence/<int:index>")
@login_required
def evidence_file(job_id: str, index: int) -> Page | WerkzeugResponse:
    """Download one stored file of the job (by its place in the job's manifest)."""
    context = web_context()
    record = context.store.get(job_id)
    entries = data.evidence_of(context, record) if record else []
    if not 0 <= index < len(entries):
        return render_template("console/not_found.html", what="evidence file"), 404
    root = Path(context.settings.cert_dir).resolve()
    path = (root / str(entries[index]["path"])).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return render_template("console/not_found.html", what="evidence file"), 404
    log.info("console_evidence_downloaded", job_id=job_id, size_bytes=path.stat().st_size)
    return send_file(
        path,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"{entries[index]['message_id']}-{index + 1}.zip",
    )


def _dead_letters() -> DeadLetters:
    return DeadLetters(dramatiq.get_broker(), web_context().settings)


@bp.get("/dead")
@login_required
def dead() -> Page:
    """Dead letters, newest first."""
    return render_template("console/dead.html", letters=_dead_letters().list(limit=200))


@bp.get("/dead/<rid>")
@login_required
def dead_letter(rid: str) -> Page:
    """One dead letter: why, its job, the message (no payload) and its traceback."""
    letter = _dead_letters().get(rid)
    if letter is None:
        return render_template("console/not_found.html", what=f"dead letter {rid[:40]}"), 404
    return render_template("console/dead_letter.html", letter=letter.detail())


@bp.post("/dead/<rid>/retry")
@operator_required
def dead_retry(rid: str) -> WerkzeugResponse:
    """Enqueue a fresh copy of the dead letter (refused for sends that may have gone)."""
    try:
        done = _dead_letters().retry(rid)
    except JobError as exc:
        flash(f"Not retried: {exc}", "error")
        return redirect(url_for("console.dead_letter", rid=rid))
    log.warning("console_dead_letter_retried", user=g.console_user.name, job_id=done["job_id"])
    flash(f"Retried: job {done['job_id']} is queued again.", "ok")
    return redirect(url_for("console.dead"))


@bp.post("/dead/<rid>/purge")
@operator_required
def dead_purge(rid: str) -> WerkzeugResponse:
    """Remove one dead letter for good."""
    removed = _dead_letters().purge(rid)
    log.warning("console_dead_letter_purged", user=g.console_user.name, removed=removed)
    flash("Purged." if removed else "Already gone.", "ok")
    return redirect(url_for("console.dead"))


@bp.get("/guard")
@login_required
def guard() -> Page:
    """The guard: limiter, breaker, rejection budget, memo, credits."""
    return render_template("console/guard.html", snap=data.guard_snapshot(web_context()))


@bp.post("/guard/reset")
@operator_required
def guard_reset() -> WerkzeugResponse:
    """Close the breaker and clear the rejection window (and the memo when asked)."""
    context = web_context()
    memo = request.form.get("memo") == "1"
    done = ProviderGuard(context.redis, context.settings).reset(memo=memo)
    log.warning("console_guard_reset", user=g.console_user.name, memo_cleared=memo)
    flash(f"Breaker closed, rejection window cleared; memo dropped {done['memo_dropped']}.", "ok")
    return redirect(url_for("console.guard"))


@bp.errorhandler(HTTPException)
def _console_error(exc: HTTPException) -> tuple[str, int]:
    return render_template("console/error.html", error=exc), exc.code or 500
