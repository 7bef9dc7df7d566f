"""``certsms demo``: the whole lifecycle against the sandbox, with a live display.

One command, no set-up: it starts its own stack in this process — an embedded
Redis (a child ``redis-server``), the provider sandbox, the web process (callbacks)
served by waitress in a thread and an in-process dramatiq worker — so it works from a
fresh clone with nothing else running. Then it walks through:

1. a Certified SMS carrying a PDF and a Contract SMS, each state change shown as it
   happens (queued → sent → delivered → certified → evidence_stored);
2. a scheduled send that is rescheduled, then cancelled;
3. an invalid payload, refused before anything is queued, with every reason;
4. a provider outage (the sandbox answers every request with a 5xx): the breaker
   opens, jobs wait (delayed, not failed), and complete once the provider is back;

and ends with where the evidence files are. Logs go to ``<var-dir>/demo.log``;
``--fast`` shortens the sandbox's status steps for tests and CI. Output is plain
lines when stdout is not a terminal.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from certsms.config.errors import CertsmsError
from certsms.worker.commands.common import description

if TYPE_CHECKING:
    from certsms.worker.commands.stack import Stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CALLBACK_USER = "mensatek"
FINAL = frozenset({"evidence_stored", "failed", "dead", "uncertain", "cancelled", "rejected"})


class DemoFailed(CertsmsError):
    """Raised when a step of the demo does not end as it should."""


@dataclass(frozen=True)
class Pace:
    """How fast the sandbox moves and how long each step may take."""

    progression_interval_s: float
    breaker_cooldown_s: float
    outage_s: float
    step_timeout_s: float

    @classmethod
    def of(cls, *, fast: bool) -> Pace:
        """``--fast``: sub-second status steps (tests, CI); else a pace a person can follow."""
        if fast:
            return cls(
                progression_interval_s=0.2,
                breaker_cooldown_s=1.0,
                outage_s=2.5,
                step_timeout_s=60.0,
            )
        return cls(
            progression_interval_s=1.5, breaker_cooldown_s=2.0, outage_s=6.0, step_timeout_s=120.0
        )


@dataclass
class Tracked:
    """A job shown in the table."""

    label: str
    job_id: str
    status: str = "queued"
    idmensaje: str = ""
    recipients: str = ""
    history: list[str] = field(default_factory=list)


def example(name: str) -> dict[str, Any]:
    """One of the example payloads in ``examples/``."""
    return dict(json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8")))


def provider_date(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM`` in Madrid time (the provider's ``Fecha``)."""
    from certsms.mensatek.dates import to_provider_datetime

    return to_provider_datetime(moment)


# --- the stack ---------------------------------------------------------------------------
@contextmanager
def running_stack(var_dir: Path, pace: Pace, *, threads: int) -> Iterator[Stack]:
    """Redis, sandbox, web and worker up for the ``with`` block; all stopped after it."""
    from pydantic import SecretStr

    from certsms.config.logging import configure_logging
    from certsms.config.settings import load_settings
    from certsms.sandbox import SandboxConfig, SandboxServer
    from certsms.worker.commands.stack import running_stack as stack_of
    from certsms.worker.embedded_redis import EmbeddedRedis

    callback_password = "demo-" + str(int(time.time()))
    redis_server = EmbeddedRedis().start()
    stopping: list[Callable[[], None]] = [redis_server.stop]
    try:
        sandbox = SandboxServer(
            SandboxConfig(
                port=0,
                progression_interval_s=pace.progression_interval_s,
                initial_credits=1_000_000.0,
            )
        ).start()
        stopping.append(sandbox.stop)
        settings = load_settings(
            redis_url=redis_server.url,
            namespace="certsms-demo",
            mensatek_base_url=sandbox.base_url,
            mensatek_api_user=sandbox.config.user,
            mensatek_api_token=SecretStr(sandbox.config.token),
            callback_user=CALLBACK_USER,
            callback_password=SecretStr(callback_password),
            cert_dir=var_dir / "certificates",
            rate_limit_per_s=50.0,
            rate_limit_send_per_s=50.0,
            rate_limit_query_per_s=20.0,
            transport_retries=0,
            read_timeout_s=5.0,
            retry_min_backoff_ms=300,
            retry_max_backoff_ms=2_000,
            breaker_failure_threshold=3,
            breaker_cooldown_s=pace.breaker_cooldown_s,
            breaker_max_cooldown_s=pace.breaker_cooldown_s * 2,
            log_format="json",
        )
        log_file = (var_dir / "demo.log").open("a", encoding="utf-8")
        stopping.append(log_file.close)
        configure_logging(settings, stream=log_file)
        with stack_of(settings, sandbox, worker_threads=threads) as stack:
            yield stack
    finally:
        for stop in reversed(stopping):
            with suppress(Exception):  # best effort: keep stopping the rest
                stop()


# --- the display --------------------------------------------------------------------------
class Display:
    """Each state change as a line; on a terminal also a live table of the jobs."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.jobs: list[Tracked] = []
        self.started = time.monotonic()
        self._live: Live | None = None

    def __enter__(self) -> Display:
        if self.console.is_terminal:
            self._live = Live(self._table(), console=self.console, refresh_per_second=8)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)

    def _table(self) -> Table:
        table = Table(title="jobs", expand=False)
        for column in ("job", "id", "status", "idMensaje", "recipients"):
            table.add_column(column)
        for job in self.jobs:
            table.add_row(job.label, job.job_id[:8], job.status, job.idmensaje, job.recipients)
        return table

    def refresh(self) -> None:
        """Redraw the live table (no-op off a terminal)."""
        if self._live is not None:
            self._live.update(self._table())

    def say(self, text: str, *, style: str | None = None) -> None:
        """A line of narration, stamped with seconds since the demo started."""
        stamp = f"[{time.monotonic() - self.started:6.1f}s]"
        self.console.print(f"{stamp} {text}", style=style, highlight=False, soft_wrap=True)

    def heading(self, text: str) -> None:
        """A step title."""
        self.console.print()
        self.console.rule(text) if self.console.is_terminal else self.console.print(f"== {text}")


# --- the steps ------------------------------------------------------------------------------
class Demo:
    """The walk-through; each step raises :class:`DemoFailed` if it does not end well."""

    def __init__(self, stack: Stack, display: Display, pace: Pace) -> None:
        from certsms.worker.jobs.store import JobStore

        self.stack = stack
        self.display = display
        self.pace = pace
        self.store = JobStore(stack.redis, stack.settings)

    def enqueue(self, label: str, kind: str, payload: dict[str, Any]) -> Tracked:
        from certsms.tasks import enqueue

        job = Tracked(label=label, job_id=enqueue(kind, payload, settings=self.stack.settings))
        self.display.jobs.append(job)
        self.display.say(f"{label}: enqueued as job {job.job_id[:8]} → queued")
        job.history.append("queued")
        return job

    def poll(self, job: Tracked) -> str:
        """Read the job record; narrate a state change."""
        record = self.store.get(job.job_id)
        status = str(record.status if record else "?")
        job.idmensaje = str(record.idmensaje or "") if record else ""
        recipients = record.recipients if record else {}
        if recipients:
            codes = sorted({str(r.result_code) for r in recipients.values()})
            classes = sorted({r.status_class for r in recipients.values()})
            job.recipients = (
                f"{len(recipients)} × Resultado {'/'.join(codes)} ({', '.join(classes)})"
            )
        if status != job.status:
            job.status = status
            job.history.append(status)
            extra = f"  (idMensaje {job.idmensaje})" if status in ("sent", "scheduled") else ""
            if status == "evidence_stored":
                extra = f"  → {record.other.get('evidence_dir') if record else ''}"
            self.display.say(f"{job.label}: {status}{extra}")
        self.display.refresh()
        return status

    def wait(self, jobs: list[Tracked], wanted: set[str], *, what: str) -> None:
        """Poll until every job is in ``wanted``; fail on another final state or a timeout."""
        deadline = time.monotonic() + self.pace.step_timeout_s
        while True:
            statuses = [self.poll(job) for job in jobs]
            if all(s in wanted for s in statuses):
                return
            for job, status in zip(jobs, statuses, strict=True):
                if status in FINAL and status not in wanted:
                    raise DemoFailed(f"{job.label} ended {status}, expected {what}")
            if time.monotonic() > deadline:
                raise DemoFailed(f"{what} not reached within {self.pace.step_timeout_s:g} s")
            time.sleep(0.05)

    # 1 --------------------------------------------------------------------------------
    def lifecycle(self) -> list[Tracked]:
        self.display.heading("1. A Certified SMS with a PDF and a Contract SMS")
        certified = self.enqueue("certified SMS + PDF", "send", example("send"))
        contract = self.enqueue("contract SMS", "send", example("contract"))
        self.wait([certified, contract], {"evidence_stored"}, what="evidence_stored")
        for job in (certified, contract):
            path = " → ".join(s for s in job.history if s not in ("running", "in_flight"))
            self.display.say(f"{job.label}: {path}", style="green")
            self.document_delivered(job)
        return [certified, contract]

    def document_delivered(self, job: Tracked) -> None:
        """Show, from the sandbox's own state, that the message's PDF went out as a link
        (``Links=1``: without it the provider sends the macro as plain text)."""
        import requests

        state = requests.get(self.stack.sandbox.admin_url + "state", timeout=10).json()
        message = next((m for m in state["messages"] if str(m["id"]) == job.idmensaje), None)
        if message is None or not message["links"] or message["macros_as_text"]:
            raise DemoFailed(f"{job.label}: the provider did not get Links=1")
        names = [a.get("name") for a in message["attachments"]]
        if not names:
            raise DemoFailed(f"{job.label}: no document reached the recipient")
        self.display.say(
            f"{job.label}: document {', '.join(map(str, names))} delivered with Links=1",
            style="green",
        )

    # 2 --------------------------------------------------------------------------------
    def scheduled(self) -> None:
        self.display.heading("2. A scheduled send, rescheduled, then cancelled")
        now = datetime.now(UTC)
        payload = {**example("scheduled"), "Fecha": provider_date(now + timedelta(days=1))}
        send = self.enqueue("scheduled send", "send", payload)
        self.wait([send], {"scheduled"}, what="scheduled")
        new_date = provider_date(now + timedelta(days=2))
        reschedule = self.enqueue(
            f"reschedule to {new_date}",
            "reschedule",
            {"Idmensaje": int(send.idmensaje), "Fecha": new_date},
        )
        self.wait([reschedule], {"succeeded"}, what="reschedule succeeded")
        cancel = self.enqueue("cancel", "cancel", {"Idmensaje": int(send.idmensaje)})
        self.wait([cancel], {"succeeded"}, what="cancel succeeded")
        self.wait([send], {"cancelled"}, what="the scheduled send cancelled")
        self.display.say("scheduled send: scheduled → rescheduled → cancelled", style="green")

    # 3 --------------------------------------------------------------------------------
    def invalid(self) -> None:
        from certsms.mensatek.errors import InvalidRequest
        from certsms.tasks import enqueue

        self.display.heading("3. An invalid payload is refused before anything is queued")
        try:
            enqueue("send", example("invalid"), settings=self.stack.settings)
        except InvalidRequest as exc:
            self.display.say(f"refused with {len(exc.problems)} reasons:", style="yellow")
            for problem in exc.problems:
                self.display.say(f"  • {problem}")
            return
        raise DemoFailed("the invalid payload was accepted")

    # 4 --------------------------------------------------------------------------------
    def outage(self) -> None:
        from certsms.worker.guard import ProviderGuard

        self.display.heading("4. A provider outage: the breaker rides it out")
        guard = ProviderGuard(self.stack.redis, self.stack.settings)
        self.stack.sandbox_config(error_5xx_rate=1.0, error_5xx_status=503)
        self.display.say("sandbox now answers every request with a 5xx", style="red")
        base = example("send-plain")
        jobs = [
            self.enqueue(
                f"send during outage #{n}",
                "send",
                {**base, "Destinatarios": [{"Movil": f"3460000010{n}"}]},
            )
            for n in range(1, 4)
        ]
        breaker = "closed"
        outage_ends = time.monotonic() + self.pace.outage_s
        while time.monotonic() < outage_ends:
            for job in jobs:
                self.poll(job)
            state = str(guard.snapshot()["breaker"]["state"])  # type: ignore[index]
            if state != breaker:
                breaker = state
                self.display.say(f"breaker: {state}", style="red" if state == "open" else None)
            time.sleep(0.1)
        failures = sum(1 for e in self.stack.sandbox_requests() if e["http_status"] >= 500)
        waiting = [job.status for job in jobs]
        self.display.say(
            f"{failures} requests answered 5xx; jobs meanwhile: {', '.join(waiting)} "
            "(delayed, none failed)"
        )
        if any(s in FINAL for s in waiting):
            raise DemoFailed(f"a job settled during the outage: {waiting}")
        self.stack.sandbox_config(error_5xx_rate=0.0)
        self.display.say("sandbox healthy again", style="green")
        self.wait(jobs, {"sent", "delivered", "certified", "evidence_stored"}, what="sent")
        final = str(guard.snapshot()["breaker"]["state"])  # type: ignore[index]
        self.display.say(
            f"all {len(jobs)} jobs sent after the outage; breaker {final}", style="green"
        )

    # end -------------------------------------------------------------------------------
    def evidence(self, jobs: list[Tracked]) -> list[str]:
        from certsms.worker.evidence import EvidenceStore

        self.display.heading("Evidence")
        store = EvidenceStore(self.stack.settings)
        paths: list[str] = []
        for job in jobs:
            checks = store.verify(job.job_id)
            if not checks or not all(check.ok for check in checks):
                raise DemoFailed(f"{job.label}: evidence missing or altered: {checks}")
            for check in checks:
                paths.append(check.path)
                self.display.say(
                    f"{job.label}: {check.path}  ({check.size_bytes} bytes, "
                    f"sha256 {check.expected_sha256[:16]}…, verified)"
                )
        self.display.say(f"evidence store: {Path(self.stack.settings.cert_dir).resolve()}")
        self.display.say(f"manifest: {store.manifest_path}")
        return paths


def run(args: argparse.Namespace) -> int:
    """Start the stack, run every step, stop the stack; 0 when every step ended well."""
    console = Console(highlight=False)
    pace = Pace.of(fast=args.fast)
    var_dir = Path(args.var_dir)
    if var_dir.exists():
        shutil.rmtree(var_dir)  # the demo's own directory: a fresh start each run
    var_dir.mkdir(parents=True)
    console.print(f"certsms demo · SANDBOX · no real SMS is sent · logs in {var_dir / 'demo.log'}")
    try:
        with (
            running_stack(var_dir, pace, threads=args.threads) as stack,
            Display(console) as display,
        ):
            display.say(
                f"redis {stack.settings.redis_url} · sandbox {stack.sandbox.base_url}"
                f" · web {stack.web_url}"
            )
            demo = Demo(stack, display, pace)
            lifecycle = demo.lifecycle()
            demo.scheduled()
            demo.invalid()
            demo.outage()
            demo.evidence(lifecycle)
    except DemoFailed as exc:
        console.print(f"demo FAILED: {exc}", style="bold red")
        console.print(f"see {var_dir / 'demo.log'}")
        return 1
    console.print("demo finished: every step ended as expected", style="bold green")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``certsms demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="walk through the lifecycle against the sandbox (everything embedded)",
        description=description(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--fast", action="store_true", help="sub-second status steps (CI)")
    parser.add_argument("--threads", type=int, default=4, help="worker threads (default 4)")
    parser.add_argument("--var-dir", default="var/demo", help="evidence and log (default var/demo)")
    parser.set_defaults(func=run)
