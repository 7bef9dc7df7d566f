"""``certsms guard``: show the provider guard's shared state; ``certsms guard reset``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from certsms.config.settings import Settings
from certsms.worker.commands.common import command_settings
from certsms.worker.guard import ProviderGuard
from certsms.worker.redis_client import redis_client


def register(subparsers: Any) -> None:
    """Add ``guard`` (show) and ``guard reset`` to the CLI."""
    parser = subparsers.add_parser(
        "guard",
        help="show the provider guard (limiter, breaker, memo, cache)",
        description="Show the provider guard's state shared by every worker through Redis.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=_show)
    sub = parser.add_subparsers(dest="guard_command", metavar="ACTION")
    reset = sub.add_parser(
        "reset",
        help="close the breaker and clear the rejection window",
        description="Close the breaker and clear the rejection window (operator override). "
        "The failure memo is kept unless --memo is given.",
    )
    reset.add_argument("--memo", action="store_true", help="also forget remembered rejections")
    reset.add_argument("--json", action="store_true", help="print one JSON document")
    reset.set_defaults(func=_reset)


def _guard(settings: Settings) -> ProviderGuard:
    return ProviderGuard(redis_client(settings), settings)


def _show(args: argparse.Namespace) -> int:
    settings = command_settings()
    snap = _guard(settings).snapshot()
    if args.json:
        from certsms.worker.commands.common import print_json

        print_json(snap)
    else:
        print(render(snap))
    return 0


def _reset(args: argparse.Namespace) -> int:
    settings = command_settings()
    done = _guard(settings).reset(memo=args.memo)
    if args.json:
        from certsms.worker.commands.common import print_json

        print_json(done)
    else:
        memo = f"memo cleared ({done['memo_dropped']} entries)" if args.memo else "memo kept"
        print(f"breaker closed, rejection window cleared, {memo}")
    return 0


def _when(epoch_s: object) -> str:
    if not isinstance(epoch_s, int | float) or not epoch_s:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_s))


def render(snap: dict[str, Any]) -> str:
    """The snapshot as a short human-readable report."""
    lines = ["limiter (next free slot):"]
    for name, entry in snap["limiter"].items():
        limit = entry.get("limit_per_s")
        limit_text = f"{limit:g}/s" if isinstance(limit, int | float) else "-"
        lines.append(
            f"  {name:<15} limit {limit_text:<10} interval {entry['interval_s']:.3f} s  "
            f"next free in {entry['next_free_in_s']:.3f} s"
        )
    b = snap["breaker"]
    line = f"breaker: {b['state']}  failures {b['failures']}  step {b['step']}"
    if b["state"] == "open":
        line += f"  open until {_when(b['open_until'])} ({b['remaining_s']:.1f} s)"
    if b.get("reason"):
        line += f"  reason {b['reason']}"
    if b["probe_in_flight"]:
        line += "  probe in flight"
    lines.append(line)
    if b["transitions"]:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(b["transitions"].items()))
        lines.append(f"  transitions: {counts}")
    r = snap["rejections"]
    paused = f"  PAUSED for {r['paused_for_s']:.1f} s" if r["paused_for_s"] else ""
    lines.append(f"rejections: {r['count']} of {r['budget']} in the last {r['window_s']} s{paused}")
    m = snap["memo"]
    lines.append(f"memo: {m['count']} rejected requests remembered (ttl {m['ttl_s']} s)")
    for entry in m["recent"]:
        lines.append(
            f"  {_when(entry.get('at'))}  {entry.get('function')}  {entry.get('class')} "
            f"Res {entry.get('res')}  {entry.get('provider_text') or ''}  "
            f"[{str(entry.get('fingerprint'))[:12]}]"
        )
    c = snap["credits"]
    lines.append(
        "credits: unknown"
        if c is None
        else f"credits: {c['credits']:g} (age {c['age_s']:.0f} s, ttl {c['ttl_s']} s)"
    )
    lines.append(f"cached answers: {snap['cached_answers']}")
    return "\n".join(lines)
