"""Profile the hot path with pyinstrument: ``enqueue_send`` and one worker running sends.

The worker side runs in this thread (pyinstrument samples one thread): it pulls from
the certsms send queue with dramatiq's own consumer and runs each message through
the broker's middleware and the actor, as a dramatiq worker thread does. Logging is
configured (to /dev/null) so its cost is in the profile. Writes the call trees to
``bench/results/profile-enqueue.txt`` and ``profile-send.txt`` and returns the
functions with the most self time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pyinstrument import Profiler

from certsms.config.settings import Settings

SEND_QUEUE = "certsms.send"
FAR_ABOVE_LOAD = 100_000.0


def _self_times(profiler: Profiler, top: int = 12) -> list[dict[str, Any]]:
    """The functions with the most self time (leaf time, summed over the whole tree)."""
    session = profiler.last_session
    if session is None:
        return []
    totals: dict[str, float] = {}
    stack: list[tuple[Any, Any]] = [(session.root_frame(), None)]
    while stack:
        frame, parent = stack.pop()
        if frame is None:
            continue
        if not frame.children:
            owner = parent if frame.function in (None, "[self]") and parent is not None else frame
            name = f"{owner.function} ({Path(owner.file_path or '?').name}:{owner.line_no})"
            totals[name] = totals.get(name, 0.0) + frame.time
        stack.extend((child, frame) for child in frame.children)
    duration = session.duration or 1.0
    return [
        {"function": name, "self_s": round(seconds, 3), "share": round(seconds / duration, 3)}
        for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    ]


def _consume(broker: Any, queue: str, jobs: int) -> None:
    consumer = broker.consume(queue, prefetch=8, timeout=100)
    processed = 0
    try:
        while processed < jobs:
            proxy = next(consumer)
            if proxy is None:
                continue
            broker.emit_before("process_message", proxy)
            actor = broker.get_actor(proxy.actor_name)
            try:
                result = actor(*proxy.args, **proxy.kwargs)
                broker.emit_after("process_message", proxy, result=result)
            except Exception as exc:
                broker.emit_after("process_message", proxy, exception=exc)
            broker.emit_before("ack", proxy)
            consumer.ack(proxy)
            broker.emit_after("ack", proxy)
            processed += 1
    finally:
        consumer.close()


def _commands(client: Any) -> dict[str, int]:
    """Redis commands served since the last ``CONFIG RESETSTAT``, by command."""
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name not in ("cmdstat_info", "cmdstat_config|resetstat", "cmdstat_config")
    }


def _measured(client: Any, jobs: int, fn: Any) -> tuple[float, dict[str, Any]]:
    """(ms per job, Redis use per job) of running ``fn``.

    ``round_trips``: requests this process wrote to Redis (a pipeline is one);
    ``commands``: commands Redis executed, those inside Lua scripts included.
    """
    from redis.connection import AbstractConnection

    sent = [0]
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        original(self, command, check_health)

    client.config_resetstat()
    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        fn()
        elapsed_ms = (time.perf_counter() - started) * 1000 / jobs
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
    counts = _commands(client)
    per_job = {
        "round_trips": round(sent[0] / jobs, 2),
        "commands": round(sum(counts.values()) / jobs, 2),
        **{k: round(v / jobs, 2) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])},
    }
    return round(elapsed_ms, 3), per_job


def profile(
    settings: Settings,
    payload: dict[str, Any],
    *,
    jobs: int,
    out_dir: Path,
    bare: tuple[Any, Any] | None = None,
    bare_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Profile ``jobs`` enqueues, then ``jobs`` sends in one worker thread.

    With ``bare`` (the baseline's broker and actor) the same is timed for the bare
    actor, and both sides' Redis commands per job are counted (``INFO commandstats``).
    """
    from certsms.config.logging import configure_logging
    from certsms.tasks import enqueue_send
    from certsms.tasks.boot import setup

    settings = settings.model_copy(
        update={
            "rate_limit_per_s": FAR_ABOVE_LOAD,
            "rate_limit_send_per_s": FAR_ABOVE_LOAD,
            "log_level": "INFO",
            "log_format": "json",
        }
    )
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives for the profile
    configure_logging(settings, stream=devnull)
    runtime = setup(settings)
    client = runtime.redis
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"jobs": jobs}

    def enqueue_all() -> None:
        for n in range(jobs):
            enqueue_send(
                {**payload, "Destinatarios": [{"Movil": f"34611{n:06d}"}]}, settings=settings
            )

    enqueue_profiler = Profiler(interval=0.0005)
    with enqueue_profiler:
        summary["enqueue_ms_per_call"], summary["enqueue_redis_commands"] = _measured(
            client, jobs, enqueue_all
        )
    send_profiler = Profiler(interval=0.0005)
    with send_profiler:
        summary["send_ms_per_job"], summary["send_redis_commands"] = _measured(
            client, jobs, lambda: _consume(runtime.broker, SEND_QUEUE, jobs)
        )
    if bare is not None and bare_params is not None:
        broker, actor = bare

        def bare_enqueue_all() -> None:
            for n in range(jobs):
                actor.send({**bare_params, "Destinatarios": [{"Movil": f"34622{n:06d}"}]})

        summary["bare_enqueue_ms_per_call"], summary["bare_enqueue_redis_commands"] = _measured(
            client, jobs, bare_enqueue_all
        )
        summary["bare_send_ms_per_job"], summary["bare_send_redis_commands"] = _measured(
            client, jobs, lambda: _consume(broker, actor.queue_name, jobs)
        )
    for name, profiler in (("enqueue", enqueue_profiler), ("send", send_profiler)):
        text = profiler.output_text(unicode=True, color=False, show_all=False)
        (out_dir / f"profile-{name}.txt").write_text(text)
        summary[f"{name}_top_self_time"] = _self_times(profiler)
    devnull.close()
    return summary
