"""Domain errors: what went wrong, said in the responder's words.

Library errors (python-ldap, httpx, yaml, pydantic) are translated at the boundary of the
module that calls the library, ``raise ... from exc``; nothing above a connector sees
a library's exception types.

    TourniquetError
    ├── ConfigError                 site configuration missing, malformed, secret not found
    ├── PlaybookError               a playbook that cannot be loaded (file:line:column, field)
    │   └── PlaybookErrors          several of them, reported at once
    ├── ExpressionError             ${{ … }} refers to a name that does not exist, or is not allowed
    ├── StorageFailed               the evidence or state folder could not be written (read-only, full)
    ├── GuardrailError              the run refuses to go on: nothing was changed by the refusal
    │   ├── ProtectedAccount        a protected account was asked for
    │   ├── BlastRadiusExceeded     more accounts than allowed, and no approval
    │   └── ApprovalRejected        a person said no, or nobody answered in time
    └── ConnectorError              an outside system failed us
        ├── TransientError          worth retrying: down, timeout, 5xx
        ├── PermanentError          retrying will not help: bad credentials, missing rights, bad request
        │   ├── VerificationFailed  the change was made but reading it back shows it did not take
        │   └── UnsafeToChange      the target's state does not allow a safe change (e.g. no lockout policy)
        └── NotFound
            ├── AccountNotFound
            │   └── NotAnAccount    the id names an entry that is not a person's account (an OU, a group …)
            └── AmbiguousAccount
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = [
    "TourniquetError",
    "ConfigError",
    "PlaybookError",
    "PlaybookErrors",
    "Location",
    "ExpressionError",
    "StorageFailed",
    "GuardrailError",
    "ProtectedAccount",
    "BlastRadiusExceeded",
    "ApprovalRejected",
    "PlanDrift",
    "ConnectorError",
    "TransientError",
    "PermanentError",
    "VerificationFailed",
    "UnsafeToChange",
    "NotFound",
    "AccountNotFound",
    "NotAnAccount",
    "AmbiguousAccount",
]


class TourniquetError(Exception):
    """Root of every error Tourniquet raises on purpose."""


class ConfigError(TourniquetError):
    """The site configuration cannot be used as it is."""


@dataclass(frozen=True)
class Location:
    """Where in a YAML file something is: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class PlaybookError(TourniquetError):
    """A playbook that cannot be loaded, with the place and field at fault."""

    def __init__(self, message: str, location: Location | None = None, path: str = "") -> None:
        self.message = message
        self.location = location
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}{field}{self.message}"


class PlaybookErrors(PlaybookError):
    """Every problem found in one playbook, so the author fixes them all in one go."""

    def __init__(self, errors: Sequence[PlaybookError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, first.location, first.path)

    def __str__(self) -> str:
        return "\n".join(PlaybookError.__str__(e) for e in self.errors)


class ExpressionError(TourniquetError):
    """An expression that names something that does not exist, or does something not allowed."""


class StorageFailed(TourniquetError):
    """A write to the evidence or state folder failed (read-only, full disk): the message says what was
    done before it stopped and what was not."""


class GuardrailError(TourniquetError):
    """The run stopped itself to protect the platform; the refusal changed nothing."""


class ProtectedAccount(GuardrailError):
    """The account matches a protected pattern and is never changed by a playbook."""


class BlastRadiusExceeded(GuardrailError):
    """More accounts than the limit allows, without a person's approval."""


class ApprovalRejected(GuardrailError):
    """A person rejected the run, or the approval timed out (a timeout counts as a no)."""


class PlanDrift(GuardrailError):
    """A change no longer starts from the state the approved plan showed: it is not sent."""


class ConnectorError(TourniquetError):
    """An outside system (directory, identity provider, ticket system, audit source) failed."""

    def __init__(self, message: str, *, system: str = "") -> None:
        self.system = system
        self.detail = message
        super().__init__(f"{system}: {message}" if system else message)


class TransientError(ConnectorError):
    """Down, timed out or overloaded: the same call may work later."""


class PermanentError(ConnectorError):
    """Wrong credentials, missing rights, refused request: retrying will not help."""


class VerificationFailed(PermanentError):
    """The change was sent, but reading the target back shows it did not take effect."""


class UnsafeToChange(PermanentError):
    """The target is in a state where the change would not do what the responder expects."""


class NotFound(ConnectorError):
    """What was asked for does not exist."""


class AccountNotFound(NotFound):
    """No account matches the identifier."""


class NotAnAccount(AccountNotFound):
    """The id names a directory entry, but not a person's account (container, group, policy, service)."""


class AmbiguousAccount(NotFound):
    """Several accounts match one identifier; the candidates are named."""

    def __init__(self, identifier: str, candidates: Sequence[str], *, system: str = "") -> None:
        self.identifier = identifier
        self.candidates = list(candidates)
        super().__init__(
            f"{identifier!r} matches {len(self.candidates)} accounts: {', '.join(self.candidates)}",
            system=system,
        )
