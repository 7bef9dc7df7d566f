"""The message contract: queue names, actor names, the versioned JSON kwargs, job ids.

Any producer that can push a dramatiq message onto Redis can enqueue a job::

    queue_name  "certsms.send" | "certsms.query" | "certsms.files"   (see QUEUE_OF)
    actor_name  "certsms.<kind>"                                     (see ACTOR_OF)
    args        []
    kwargs      {"v": 1, "job_id": "<id>", "kind": "<kind>", "payload": {...}}
    options     {}

``payload`` uses the provider's parameter names (case-insensitive) or the Python
names, exactly as the producer API accepts them (certsms's own producer queues the
canonical form: the request model's Python names, see :mod:`worker.jobs.producer`).
A message whose kwargs break this contract (unknown ``v``, missing or extra keys,
wrong types, a kind that does not match the actor) is dead-lettered with the reason;
it is never retried.

Provider callbacks travel as their own message (queued by the web process, run by
the ``process_callback`` actor)::

    queue_name  "certsms.callbacks"
    actor_name  "certsms.process_callback"
    args        []
    kwargs      {"v": 1, "fields": {<the callback body, values as strings>},
                 "received_at": "<ISO-8601 UTC>"}

This module builds both kinds of message (:func:`job_message`,
:func:`callback_message`) so that any layer can queue one without importing the
actors; and it holds the one job-id rule (:func:`job_id_problem`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dramatiq.message import Message

from certsms.mensatek.requests import KINDS as REQUEST_KINDS
from certsms.worker.errors import MalformedMessage

CONTRACT_VERSION = 1

KINDS: tuple[str, ...] = REQUEST_KINDS  # one list of the nine functions, in mensatek

SEND_QUEUE = "certsms.send"
QUERY_QUEUE = "certsms.query"
FILES_QUEUE = "certsms.files"
QUEUES: tuple[str, ...] = (SEND_QUEUE, QUERY_QUEUE, FILES_QUEUE)

QUEUE_OF: dict[str, str] = {
    "send": SEND_QUEUE,
    "cancel": SEND_QUEUE,
    "reschedule": SEND_QUEUE,
    "certificate": QUERY_QUEUE,
    "report": QUERY_QUEUE,
    "credits": QUERY_QUEUE,
    "list_files": QUERY_QUEUE,
    "upload": FILES_QUEUE,
    "delete_file": FILES_QUEUE,
}
ACTOR_OF: dict[str, str] = {kind: f"certsms.{kind}" for kind in KINDS}
KIND_OF_ACTOR: dict[str, str] = {actor: kind for kind, actor in ACTOR_OF.items()}

CALLBACKS_QUEUE = "certsms.callbacks"
CALLBACK_ACTOR = "certsms.process_callback"
CALLBACK_CONTRACT_VERSION = 1
#: Every queue certsms consumes (dead letters, stalled-job sweeps and the CLI list these).
ALL_QUEUES: tuple[str, ...] = (*QUEUES, CALLBACKS_QUEUE)

#: The one job-id rule: 1-128 characters of ``[A-Za-z0-9._-]``, starting alphanumeric.
#: No ``:``: it separates the parts of Redis key names (``job:<id>:inbox``), so an id
#: with one could name another job's keys.
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
JOB_ID_RULE = "1-128 characters of [A-Za-z0-9._-], starting with a letter or digit"
_KEYS = frozenset({"v", "job_id", "kind", "payload"})


@dataclass(frozen=True)
class JobMessage:
    """The kwargs of a job message, checked."""

    job_id: str
    kind: str
    payload: dict[str, Any]

    def kwargs(self) -> dict[str, Any]:
        """The kwargs as they travel (plain JSON)."""
        return {
            "v": CONTRACT_VERSION,
            "job_id": self.job_id,
            "kind": self.kind,
            "payload": self.payload,
        }


def job_id_problem(job_id: object) -> str | None:
    """Why ``job_id`` is not a valid job id, or None."""
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
        return f"must be {JOB_ID_RULE}"
    return None


def job_message(job: JobMessage) -> Message[Any]:
    """The dramatiq message of a job: its kind's actor and queue, the contract's kwargs."""
    return Message(
        queue_name=QUEUE_OF[job.kind],
        actor_name=ACTOR_OF[job.kind],
        args=(),
        kwargs=job.kwargs(),
        options={},
    )


def callback_message(fields: Mapping[str, str], received_at: str) -> Message[Any]:
    """The dramatiq message of one provider callback (see the module docstring)."""
    return Message(
        queue_name=CALLBACKS_QUEUE,
        actor_name=CALLBACK_ACTOR,
        args=(),
        kwargs={"v": CALLBACK_CONTRACT_VERSION, "fields": dict(fields), "received_at": received_at},
        options={},
    )


def parse_kwargs(actor_name: str, args: object, kwargs: object) -> JobMessage:
    """Check a message against the contract; raises :class:`MalformedMessage` naming the problem."""
    if args not in ((), []):
        raise MalformedMessage("positional args are not part of the contract (must be [])")
    if not isinstance(kwargs, Mapping):
        raise MalformedMessage("kwargs must be a JSON object")
    version = kwargs.get("v")
    if "v" not in kwargs:
        raise MalformedMessage("kwargs.v (the contract version) is missing")
    if isinstance(version, bool) or version != CONTRACT_VERSION:
        raise MalformedMessage(
            f"unknown contract version v={version!r} (this worker speaks v={CONTRACT_VERSION})"
        )
    extra = sorted(set(kwargs) - _KEYS)
    if extra:
        raise MalformedMessage(f"unknown kwargs {', '.join(extra)}")
    missing = sorted(_KEYS - set(kwargs))
    if missing:
        raise MalformedMessage(f"missing kwargs {', '.join(missing)}")
    job_id = kwargs["job_id"]
    if not isinstance(job_id, str) or job_id_problem(job_id):
        raise MalformedMessage(f"kwargs.job_id must be {JOB_ID_RULE}")
    kind = kwargs["kind"]
    expected = KIND_OF_ACTOR.get(actor_name)
    if kind not in KINDS:
        raise MalformedMessage(f"kwargs.kind {kind!r} is not one of {', '.join(KINDS)}")
    if expected is not None and kind != expected:
        raise MalformedMessage(f"kwargs.kind {kind!r} does not match actor {actor_name}")
    payload = kwargs["payload"]
    if not isinstance(payload, Mapping):
        raise MalformedMessage("kwargs.payload must be a JSON object")
    return JobMessage(job_id=job_id, kind=str(kind), payload=dict(payload))
