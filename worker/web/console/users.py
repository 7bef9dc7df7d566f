"""Who may use the console: ``CERTSMS_CONSOLE_USERS`` parsed into users with a role.

Format: comma-separated ``NAME=ROLE:PASSWORD_HASH``; ``ROLE`` is ``viewer`` (may look;
phone numbers are masked) or ``operator`` (may also act: retry and purge dead letters,
reset the guard; sees phone numbers). Hashes are werkzeug's (``scrypt:…``), made by
``certsms console hash-password``, which reads the password from stdin so it never
appears on a command line. Passwords are only ever compared with
:func:`werkzeug.security.check_password_hash` (constant time) and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from werkzeug.security import check_password_hash, generate_password_hash

from certsms.config.settings import Settings

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")

# a well-formed hash checked when the user is unknown, so the answer time does not
# tell which names exist
_DUMMY_HASH = generate_password_hash("certsms-console-dummy")


@dataclass(frozen=True)
class ConsoleUser:
    """One console user."""

    name: str
    role: Role
    password_hash: str

    @property
    def may_act(self) -> bool:
        """Whether the user may change anything (operators)."""
        return self.role == "operator"

    @property
    def sees_phones(self) -> bool:
        """Whether phone numbers are shown unmasked (operators)."""
        return self.role == "operator"


def parse_users(text: str) -> dict[str, ConsoleUser]:
    """``NAME=ROLE:HASH,…`` → users by name; raises ``ValueError`` naming the bad entry."""
    users: dict[str, ConsoleUser] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, eq, rest = entry.partition("=")
        role, colon, password_hash = rest.partition(":")
        name = name.strip()
        if not (eq and colon and name and password_hash):
            raise ValueError(f"console user entry #{len(users) + 1} is not NAME=ROLE:HASH")
        if role not in ROLES:
            raise ValueError(f"console user {name!r}: role must be viewer or operator")
        users[name] = ConsoleUser(name, cast(Role, role), password_hash)
    return users


def console_users(settings: Settings) -> dict[str, ConsoleUser]:
    """The configured users (empty: the console is off)."""
    if settings.console_users is None:
        return {}
    return parse_users(settings.console_users.get_secret_value())


def authenticate(users: dict[str, ConsoleUser], name: str, password: str) -> ConsoleUser | None:
    """The user when ``password`` is theirs, else None (same work either way)."""
    user = users.get(name)
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    return user if user is not None and ok else None


def hash_password(password: str) -> str:
    """A hash for ``CERTSMS_CONSOLE_USERS`` (werkzeug's default, scrypt)."""
    if not password:
        raise ValueError("the password is empty")
    return generate_password_hash(password)
