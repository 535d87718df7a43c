"""One account, one writer: a run holds the accounts it changes, and no other run changes them meanwhile.

Two runs that both want to change ``jdupont`` (two alerts, a double click, a responder and a trigger)
must not interleave. A run takes the slots of every account a changing step targets in **one
acquisition** — all or nothing, so two runs wanting overlapping sets never deadlock — and keeps them
until it ends. A step that needs accounts the run does not hold yet releases what it holds and takes
the union, again all or nothing.

A slot is a byte of ``<state_dir>/locks/accounts.lock`` locked with an open-file-description lock
(Linux ``F_OFD_SETLK``): held per run (not per process, so two runs in one process exclude each other),
released by the kernel if the process dies, and cheap — taking 10,000 slots is 10,000 system calls
on one file, not 10,000 files or server round trips. Workers on several machines share ``state_dir``
(as they already must for the evidence, the ticket ledger and the outbox) on a file system with POSIX
locks (NFSv4). Who holds what is written to ``locks/holders/<run>.json``, so a run that has to wait
can say which run it waits for.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from tourniquet.errors import TransientError

__all__ = ["AccountLocks", "AccountsBusy", "slot_of"]

log = structlog.get_logger("tourniquet")

#: struct flock on Linux x86_64 / aarch64: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
_FLOCK = "hhqqi4x"
_SLOTS = 1 << 40


class AccountsBusy(TransientError):
    """Another run holds one of the accounts; it names that run."""


def slot_of(key: str) -> int:
    """The byte standing for one account (its canonical key) in the lock file."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:5], "big") % _SLOTS


def _lock(fd: int, slot: int, kind: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, kind, os.SEEK_SET, slot, 1, 0))
        return True
    except OSError as exc:
        if exc.errno in (11, 13):  # EAGAIN / EACCES: held by another open file description
            return False
        raise


class AccountLocks:
    """The account slots one run holds (see the module docstring)."""

    def __init__(self, folder: Path, *, run: str, incident: str) -> None:
        self.folder = Path(folder)
        self.run, self.incident = run, incident
        self._fd: int | None = None
        self._held: dict[int, str] = {}
        self._guard = threading.Lock()

    @property
    def held(self) -> set[str]:
        return set(self._held.values())

    def _file(self) -> int:
        if self._fd is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.folder / "accounts.lock", os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def ensure(self, keys: Iterable[str], timeout: float) -> None:
        """Hold every one of ``keys`` (plus what is held already), waiting up to ``timeout`` seconds for them."""
        wanted = {slot_of(k): k for k in keys}
        with self._guard:
            if set(wanted) <= set(self._held):
                return
            wanted.update(self._held)
            self._release()
            deadline = time.monotonic() + timeout
            pause = 0.05
            while True:
                busy = self._take(wanted)
                if busy is None:
                    self._write_holder()
                    log.debug("accounts.held", accounts=len(self._held))
                    return
                if time.monotonic() + pause > deadline:
                    holder = self._holder_of(busy)
                    raise AccountsBusy(f"{wanted[busy]} is being changed by {holder}; gave up waiting after "
                                       f"{timeout:g}s", system="tourniquet")
                time.sleep(pause)
                pause = min(1.0, pause * 1.5)

    def _take(self, wanted: dict[int, str]) -> int | None:
        """Take all slots in order, or none: the first busy slot is returned after releasing the others."""
        fd = self._file()
        taken: list[int] = []
        for slot in sorted(wanted):
            if not _lock(fd, slot, fcntl.F_WRLCK):
                for done in taken:
                    _lock(fd, done, fcntl.F_UNLCK)
                return slot
            taken.append(slot)
        self._held = {slot: wanted[slot] for slot in taken}
        return None

    def release(self) -> None:
        with self._guard:
            self._release()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _release(self) -> None:
        if self._fd is not None:
            for slot in self._held:
                _lock(self._fd, slot, fcntl.F_UNLCK)
        self._held = {}
        try:
            self._holder_file().unlink()
        except FileNotFoundError:
            pass

    # -- who holds what

    def _holder_file(self) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.run)[:120] or "run"
        return self.folder / "holders" / f"{safe}.json"

    def _write_holder(self) -> None:
        path = self._holder_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"run": self.run, "incident": self.incident, "host": socket.gethostname(), "pid": os.getpid(),
                    "since": datetime.now(timezone.utc).isoformat(), "slots": sorted(self._held)}
        temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(document), encoding="utf-8")
        os.replace(temporary, path)

    def _holder_of(self, slot: int) -> str:
        for path in sorted((self.folder / "holders").glob("*.json")):
            try:
                document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if slot in document.get("slots", []) and document.get("run") != self.run:
                return f"run {document.get('run')} of incident {document.get('incident')} (pid {document.get('pid')} " \
                       f"on {document.get('host')}, since {document.get('since')})"
        return "another run"

    def __enter__(self) -> "AccountLocks":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
