"""One-time passwords handed to the operator who gives an account back, and to nobody else.

A one-time password set by ``recover`` must reach one person once. It is never an action's
argument or result (those reach the journal, Prefect's task runs and the report), never logged,
never journaled, never put on the ticket. The action that sets it hands it to the
:class:`Handover` opened for its incident in this process, which either keeps it in memory until
the command line prints it (:meth:`Handover.take`), or writes it at once to a file created with
mode 0600 that did not exist before — and is removed again if the recovery handed nothing over
(refused, failed before the password was set): a password file exists only when it holds a
password. Prefect runs a flow's tasks in threads of the flow's own
process, so an in-memory handover reaches the tasks of a flow called in the same process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tourniquet.errors import ConfigError
from tourniquet.secrets import register_secret

__all__ = ["Handover", "handover", "for_incident"]

_OPEN: dict[str, "Handover"] = {}
_GUARD = threading.Lock()


class Handover:
    """Where the one-time passwords of one incident's recovery go: a 0600 file, or memory until taken."""

    def __init__(self, incident: str, path: str | os.PathLike[str] | None = None) -> None:
        self.incident = incident
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._held: dict[str, str] = {}
        self._fd: int | None = None
        self._delivered = 0
        if self.path is not None:
            try:  # created here, by us, readable by the operator only: never an existing file or a symlink
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError as exc:
                raise ConfigError(f"{self.path} already exists: give a new file for the one-time password") from exc
            except OSError as exc:
                raise ConfigError(f"cannot create {self.path} for the one-time password: {exc.strerror}") from exc

    @property
    def where(self) -> str:
        """Said in the journal and the ticket instead of the password: where the operator finds it."""
        return f"file {self.path} (mode 0600)" if self.path is not None else "shown once on the operator's terminal"

    def deliver(self, account: str, secret: str) -> str:
        """Hand ``secret`` over for ``account``; returns :attr:`where`."""
        register_secret(secret)  # masked even if something were to print it
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, f"{account}\t{secret}\n".encode())
                os.fsync(self._fd)
                self._delivered += 1
            else:
                self._held[account] = secret
        return self.where

    def take(self) -> dict[str, str]:
        """The passwords held in memory, once: a second call gets nothing."""
        with self._lock:
            held, self._held = self._held, {}
        return held

    def close(self) -> None:
        """Close the file; one that holds no password (nothing was handed over) is removed: never left empty."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                if not self._delivered and self.path is not None:
                    self.path.unlink(missing_ok=True)


@contextmanager
def handover(incident: str, path: str | os.PathLike[str] | None = None) -> Iterator[Handover]:
    """Open the handover of ``incident`` for this process (one at a time per incident)."""
    box = Handover(incident, path)
    with _GUARD:
        if incident in _OPEN:
            box.close()
            raise ConfigError(f"a recovery of incident {incident} is already under way in this process")
        _OPEN[incident] = box
    try:
        yield box
    finally:
        with _GUARD:
            _OPEN.pop(incident, None)
        box.close()


def for_incident(incident: str) -> Handover | None:
    """The open handover of ``incident``, if any (the action refuses to set a password without one)."""
    with _GUARD:
        return _OPEN.get(incident)
