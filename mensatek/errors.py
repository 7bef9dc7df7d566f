"""Errors of the Mensatek client. Every provider answer maps to one of these in
exactly one place (:mod:`mensatek.answers`, used by :mod:`mensatek.client`); the
token is never carried.

::

    CertsmsError                         (config.errors)
    ├── MensatekError                    anything about the provider
    │   ├── InvalidRequest               local validation failed; nothing was sent
    │   ├── ProviderRejected             the provider answered a negative Res
    │   │   ├── AuthenticationFailed       Res -1 or HTTP 401
    │   │   ├── InsufficientCredits        CreditosNecesarios in a send's answer (any Res);
    │   │   │                              not memoised: the send waits for a top-up
    │   │   ├── BadRequestData             Res -3 (the provider's Error text); upload -2
    │   │   ├── NotCancellable             cancel/reschedule -4/-5 (already sent/cancelled)
    │   │   ├── BadDate                    reschedule -6
    │   │   ├── NotFound                   report/certificate -4, delete -2, cancel/reschedule -2
    │   │   └── FileLibraryError           upload -10 … -18
    │   ├── ProviderUnavailable          5xx, 429, 403 and other block-like answers,
    │   │                                HTML or unparseable bodies
    │   ├── TransportError               no usable answer (request_sent tells whether
    │   │                                the body may have reached the provider)
    │   └── LocalRejection               refused by the guard without a request
    │       (RepeatedRejection, GuardDelay are defined in worker.guard)
    └── CallbackInvalid                  a provider callback we cannot process (mensatek.callbacks)
"""

from __future__ import annotations

from dataclasses import dataclass

from certsms.config.errors import CertsmsError


@dataclass(frozen=True)
class FieldProblem:
    """One failed validation rule: the provider's name, the Python name, the rule."""

    provider_name: str
    python_name: str
    message: str

    def __str__(self) -> str:
        return f"{self.provider_name} ({self.python_name}): {self.message}"

    def as_dict(self) -> dict[str, str]:
        """The problem as plain JSON (for CLI and HTTP answers)."""
        return {"field": self.provider_name, "python_name": self.python_name, "error": self.message}


class MensatekError(CertsmsError):
    """Raised for anything that went wrong with a provider function (the library's root)."""

    def __init__(
        self,
        message: str,
        *,
        function: str | None = None,
        res: int | None = None,
        http_status: int | None = None,
        provider_text: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.function = function
        self.res = res
        self.http_status = http_status
        self.provider_text = provider_text
        self.request_id = request_id

    def as_dict(self) -> dict[str, object]:
        """The error as plain JSON for job records and logs (never the token)."""
        return {
            "class": type(self).__name__,
            "message": self.message,
            "function": self.function,
            "res": self.res,
            "http_status": self.http_status,
            "provider_text": self.provider_text,
            "request_id": self.request_id,
        }


class InvalidRequest(MensatekError):
    """Raised when local validation fails; ``problems`` lists every failed rule."""

    def __init__(self, problems: list[FieldProblem], *, function: str | None = None) -> None:
        self.problems = list(problems)
        text = "; ".join(str(p) for p in self.problems) or "invalid request"
        super().__init__(text, function=function)

    def as_dict(self) -> dict[str, object]:
        """The error with every problem as plain JSON."""
        data = super().as_dict()
        data["problems"] = [p.as_dict() for p in self.problems]
        return data


class ProviderRejected(MensatekError):
    """Raised when the provider answered a negative ``Res`` (permanent; never repeated)."""


class AuthenticationFailed(ProviderRejected):
    """Raised on ``Res`` -1 or HTTP 401: the credentials are wrong; stop all traffic."""


class InsufficientCredits(ProviderRejected):
    """Raised when a send's answer carries ``CreditosNecesarios`` (whatever its ``Res``):
    the account has ``credits_available`` and the send needs ``credits_needed``.

    A ``ProviderRejected`` by family but not a rejection in effect: the request was
    right and works after a top-up, so it is never memoised, never counted against
    the rejection budget and never fails a job (docs/provider.md §3.1).
    """

    def __init__(
        self,
        message: str,
        *,
        credits_needed: float | None = None,
        credits_available: float | None = None,
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.credits_needed = credits_needed
        self.credits_available = credits_available

    def as_dict(self) -> dict[str, object]:
        """The error with the credits needed and available."""
        data = super().as_dict()
        data["credits_needed"] = self.credits_needed
        data["credits_available"] = self.credits_available
        return data


class BadRequestData(ProviderRejected):
    """Raised on ``Res`` -3: missing or malformed parameters (``provider_text`` says which)."""


class NotCancellable(ProviderRejected):
    """Raised on cancel/reschedule -4/-5: already sent or already cancelled."""


class BadDate(ProviderRejected):
    """Raised on reschedule -6: the new date is not acceptable."""


class NotFound(ProviderRejected):
    """Raised when the message, report or file does not exist or is not ours."""


class FileLibraryError(ProviderRejected):
    """Raised on upload -10 … -18: quota, format, size or account restrictions."""


class ProviderUnavailable(MensatekError):
    """Raised on block-like or unhealthy answers: 5xx, 429, 403, HTML or unparseable bodies."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class TransportError(MensatekError):
    """Raised when no usable answer came back.

    ``request_sent=False``: the connection failed before the body left (safe to retry).
    ``request_sent=True``: a timeout or reset after the body may have left — the
    outcome is unknown, so a send must not be repeated blindly.
    """

    def __init__(self, message: str, *, request_sent: bool, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.request_sent = request_sent

    def as_dict(self) -> dict[str, object]:
        """The error with ``request_sent``."""
        data = super().as_dict()
        data["request_sent"] = self.request_sent
        return data


class LocalRejection(MensatekError):
    """Raised when certsms itself refuses to send a request (guard, memo, pause)."""
