"""The atomic status transition: one Lua script checks the move and writes it.

The script (:data:`TRANSITION_LUA`) reads the status, refuses a backwards move
(unless ``expect`` names the current status or ``force``), checks an optional guard
field, writes the new status and fields, moves the job between the status indexes
(trimming entries older than the retention from the one it enters), refreshes the
retention of the record and its ``by_reference`` / ``by_message`` index entries
and appends the event, all in one step: two workers racing on a job cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from certsms.config.settings import Settings
from certsms.worker.jobs.fields import encode, utc_now_iso
from certsms.worker.jobs.status import RANK, JobStatus

_EVENT_FIELDS = ("attempt", "idmensaje", "res", "error_class", "reason", "source")

TRANSITION_LUA = """
local job = KEYS[1]
local status = redis.call('HGET', job, 'status')
if not status then return {0, '', 'missing'} end
local to, now, iso, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local force, expect, maxlen, event, prefix = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local guard_field, guard_value = ARGV[10], ARGV[11]
local nfields = tonumber(ARGV[12])
local ranks = cjson.decode(ARGV[13])
local by_message, want = ARGV[14], ARGV[15]
local reference_prefix, message_prefix = ARGV[16], ARGV[17]
if expect ~= '' then
  local ok = false
  for s in string.gmatch(expect, '[^,]+') do if s == status then ok = true end end
  if not ok then return {0, status, 'unexpected'} end
elseif force ~= '1' then
  if (ranks[to] or -1) <= (ranks[status] or -1) then return {0, status, 'backwards'} end
end
if guard_field ~= '' and redis.call('HGET', job, guard_field) ~= guard_value then
  return {0, status, 'guard'}
end
local id = redis.call('HGET', job, 'id')
local kind = redis.call('HGET', job, 'kind') or ''
redis.call('HSET', job, 'status', to, 'updated_at', iso)
local first = 18
for i = first, first + 2 * nfields - 1, 2 do
  local name, value = ARGV[i], ARGV[i + 1]
  if string.sub(name, 1, 1) == '+' then
    redis.call('HINCRBY', job, string.sub(name, 2), tonumber(value))
  elseif value == '' then
    redis.call('HDEL', job, name)
  else
    redis.call('HSET', job, name, value)
  end
end
redis.call('EXPIRE', job, ttl)
redis.call('EXPIRE', job .. ':recipients', ttl)
redis.call('EXPIRE', job .. ':phones', ttl)
redis.call('EXPIRE', job .. ':classes', ttl)
redis.call('ZREM', prefix .. status, id)
redis.call('ZADD', prefix .. to, now, id)
redis.call('ZREMRANGEBYSCORE', prefix .. to, '-inf', '(' .. (tonumber(now) - tonumber(ttl)))
local entry = {'v', '1', 'event', event, 'job_id', id, 'kind', kind, 'at', iso,
               'status', to, 'previous_status', status}
for i = first + 2 * nfields, #ARGV, 2 do
  table.insert(entry, ARGV[i]); table.insert(entry, ARGV[i + 1])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(entry))
if by_message ~= '' and kind == 'send' then
  redis.call('SET', by_message, id, 'EX', ttl)
end
local function refresh(index)
  if redis.call('GET', index) == id then redis.call('EXPIRE', index, ttl) end
end
local reference = redis.call('HGET', job, 'reference')
if reference and reference ~= '' and reference_prefix ~= '' then
  refresh(reference_prefix .. reference)
end
local idmensaje = redis.call('HGET', job, 'idmensaje')
if idmensaje and idmensaje ~= '' and message_prefix ~= '' and kind == 'send' then
  refresh(message_prefix .. idmensaje)
end
local wanted = ''
if want ~= '' then wanted = redis.call('HGET', job, want) or '' end
return {1, status, 'ok', redis.call('HLEN', job .. ':recipients'), wanted}
"""

#: The rank table as the script reads it.
RANKS_JSON = json.dumps({str(k): v for k, v in RANK.items()})


@dataclass(frozen=True)
class TransitionResult:
    """The outcome of a transition attempt (truthy when it happened)."""

    ok: bool
    previous: str | None
    reason: str  # "ok" | "missing" | "backwards" | "unexpected" | "guard"
    recipients: int = 0  # recipient statuses recorded so far (when ok)
    wanted: str | None = None  # the value of the field asked for with ``want`` (when ok)

    def __bool__(self) -> bool:
        return self.ok


def transition_args(
    to: JobStatus,
    fields: Mapping[str, object],
    *,
    settings: Settings,
    status_prefix: str,
    now: float,
    force: bool,
    expect: Iterable[JobStatus] | None,
    guard: tuple[str, str] | None,
    event: str,
    by_message_key: str = "",
    want: str = "",
    reference_prefix: str = "",
    message_prefix: str = "",
) -> list[str]:
    """The script's ``ARGV``: the move, then the fields to write, then the event's extras.

    A field named ``incr_<name>`` becomes ``+<name>`` (incremented by its value).
    ``reference_prefix`` / ``message_prefix`` are the ``by_reference`` / ``by_message``
    index keys without the value: the job's entries there get its retention again.
    """
    pairs: list[str] = []
    for name, value in fields.items():
        name = name if not name.startswith("incr_") else "+" + name[5:]
        pairs += [name, encode(value)]
    events: list[str] = []
    for name in _EVENT_FIELDS:
        value = fields.get(name)
        if value is not None:
            events += [name, encode(value)]
    error = fields.get("error")
    if isinstance(error, Mapping) and error.get("class"):
        events += ["error_class", str(error["class"])]
    if "incr_attempts" in fields:
        events += ["attempt_increment", encode(fields["incr_attempts"])]
    return [
        str(to),
        repr(now),
        utc_now_iso(now),
        str(settings.job_retention_s),
        "1" if force else "0",
        ",".join(str(s) for s in expect) if expect is not None else "",
        str(settings.events_maxlen),
        event,
        status_prefix,
        guard[0] if guard else "",
        guard[1] if guard else "",
        str(len(pairs) // 2),
        RANKS_JSON,
        by_message_key,
        want,
        reference_prefix,
        message_prefix,
        *pairs,
        *events,
    ]


def transition_result(raw: list[Any]) -> TransitionResult:
    """The script's ``{ok, previous status, reason}`` answer."""
    ok, previous, reason = int(raw[0]), raw[1], raw[2]
    previous_text = previous.decode() if isinstance(previous, bytes) else previous
    reason_text = reason.decode() if isinstance(reason, bytes) else reason
    recipients = int(raw[3]) if len(raw) > 3 else 0
    wanted = raw[4] if len(raw) > 4 else None
    wanted_text = wanted.decode() if isinstance(wanted, bytes) else wanted
    return TransitionResult(
        bool(ok), previous_text or None, str(reason_text), recipients, wanted_text or None
    )
