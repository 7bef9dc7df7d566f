"""The provider guard: one shared door between every worker and Mensatek.

A global smooth rate limiter, a provider-health breaker, a failure memo, a
rejection budget and a query cache, all shared through Redis by every process
on every host. Actors call :meth:`ProviderGuard.call`.
"""

from certsms.worker.guard.breaker import Breaker
from certsms.worker.guard.cache import JSON_CODEC, Codec, QueryCache
from certsms.worker.guard.errors import DelayReason, GuardDelay, RepeatedRejection
from certsms.worker.guard.guard import ProviderGuard, is_unhealthy
from certsms.worker.guard.limiter import Budget, Grant, RateLimiter
from certsms.worker.guard.memo import NOT_MEMOISED, FailureMemo, fingerprint
from certsms.worker.guard.rejections import RejectionBudget

__all__ = [
    "JSON_CODEC",
    "NOT_MEMOISED",
    "Breaker",
    "Budget",
    "Codec",
    "DelayReason",
    "FailureMemo",
    "Grant",
    "GuardDelay",
    "ProviderGuard",
    "QueryCache",
    "RateLimiter",
    "RejectionBudget",
    "RepeatedRejection",
    "fingerprint",
    "is_unhealthy",
]
