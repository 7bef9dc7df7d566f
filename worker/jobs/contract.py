"""The message contract: queue names, actor names and the versioned JSON kwargs.

Any producer that can push a dramatiq message onto Redis can enqueue a job::

    queue_name  "certsms.send" | "certsms.query" | "certsms.files"   (see QUEUE_OF)
    actor_name  "certsms.<kind>"                                     (see ACTOR_OF)
    args        []
    kwargs      {"v": 1, "job_id": "<id>", "kind": "<kind>", "payload": {...}}
    options     {}

``payload`` uses the provider's parameter names (case-insensitive) or the Python
names, exactly as the producer API accepts them. A message whose kwargs break this
contract (unknown ``v``, missing or extra keys, wrong types, a kind that does not
match the actor) is dead-lettered with the reason; it is never retried.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mensatek.requests import KINDS as REQUEST_KINDS
from worker.errors import MalformedMessage

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

_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
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
    if not isinstance(job_id, str) or not _JOB_ID_RE.match(job_id):
        raise MalformedMessage("kwargs.job_id must be 1-128 characters of [A-Za-z0-9._:-]")
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


def _reference_keys() -> frozenset[str]:
    from mensatek.payloads import SEND_FIELDS

    (spec,) = (s for s in SEND_FIELDS if s.python == "reference")
    return frozenset(name.lower() for name in (spec.python, spec.provider, *spec.aliases))


#: Every spelling of a send's reference (lower-cased): reference, referenciausuario, referencia.
REFERENCE_KEYS: frozenset[str] = _reference_keys()


def fill_reference(payload: dict[str, Any], job_id: str) -> str | None:
    """Give a send ``payload`` the job id as ``Referenciausuario`` unless it has a reference.

    Reference keys (any spelling, any case) whose value is empty (None or blank text)
    are removed first, so the added key never sits next to an empty alias (which the
    worker's validation would refuse as "given twice"). Returns the reference it set,
    or None when the payload keeps its own.
    """
    for key in [k for k in payload if str(k).lower() in REFERENCE_KEYS]:
        value = payload[key]
        if value is None or (isinstance(value, str) and not value.strip()):
            del payload[key]
    if any(str(k).lower() in REFERENCE_KEYS for k in payload):
        return None
    payload["Referenciausuario"] = job_id
    return job_id
