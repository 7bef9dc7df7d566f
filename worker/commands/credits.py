"""``certsms credits``: the account's credits, from cache whenever possible.

The provider calls ``GetCreditos`` "a function of very sporadic use" and treats
fast repeated identical queries as spam, while every other answer already carries
``Cred``. So this command answers from the guard's cache (fed by every answer's
``Cred``) and asks the provider only when the cached value is older than
``CERTSMS_CREDITS_CACHE_TTL_S`` (or ``--max-age-s``) — through the guard, so the
query budget, breaker and single-flight apply (concurrent askers make one request).
"""

from __future__ import annotations

import argparse
from typing import Any

from certsms.mensatek.client import MensatekClient
from certsms.mensatek.errors import MensatekError
from certsms.worker.commands.common import EXIT_FAILURE, command_settings, description, print_json
from certsms.worker.guard import GuardDelay, ProviderGuard
from certsms.worker.redis_client import redis_client


def _run(args: argparse.Namespace) -> int:
    settings = command_settings()
    settings.require_provider_credentials()
    guard = ProviderGuard(redis_client(settings), settings)
    with MensatekClient(settings) as client:
        try:
            credits, age_s = guard.credits(client.credits, max_age_s=args.max_age_s)
        except (GuardDelay, MensatekError) as exc:
            if args.json:
                print_json({"error": type(exc).__name__, "message": str(exc)})
            else:
                print(f"certsms: credits unavailable: {exc}")
            return EXIT_FAILURE
    if args.json:
        print_json({"credits": credits, "age_s": round(age_s, 3), "cached": age_s > 0})
    else:
        origin = f"cached {age_s:.0f} s ago" if age_s > 0 else "just asked the provider"
        print(f"{credits:g} credits ({origin})")
    return 0


def register(subparsers: Any) -> None:
    """Add ``credits``."""
    parser = subparsers.add_parser(
        "credits",
        help="show the account's credits (from cache when fresh)",
        description=description(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--max-age-s",
        type=float,
        default=None,
        help="accept a cached value up to this old (default CERTSMS_CREDITS_CACHE_TTL_S)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=_run)
