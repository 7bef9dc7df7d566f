"""The project's one root exception.

Every exception certsms raises on purpose derives from :class:`CertsmsError`::

    CertsmsError
    ├── ConfigError                      (config.errors)   bad or missing setting
    ├── MensatekError                    (mensatek.errors) anything about the provider
    │   ├── InvalidRequest                 local validation, never sent
    │   ├── ProviderRejected               negative Res (and subclasses)
    │   ├── ProviderUnavailable            5xx, 429, 403, HTML, unparseable
    │   └── TransportError                 connect / timeout / reset
    └── JobError                         (worker.errors)   job system and guard
"""

from __future__ import annotations


class CertsmsError(Exception):
    """Raised for every error certsms raises deliberately (the root)."""


class ConfigError(CertsmsError):
    """Raised when a setting is missing or invalid; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")
