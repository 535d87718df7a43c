"""A throwaway PostgreSQL 15 for the tests that read an access log from a real server.

initdb as the ``postgres`` user into a temp dir, pg_ctl on a free loopback port with the unix
socket in the same dir (recipe: /work/shared/reference/systems.md). Missing PostgreSQL skips
locally and fails in CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["PG_BIN", "free_port", "throwaway_postgres"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)


def _require_postgres() -> None:
    if not (PG_BIN / "initdb").exists():
        message = "PostgreSQL 15 missing: bin/setup.d/postgresql.sh installs it"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must not skip PostgreSQL tests)")
        pytest.skip(message)


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a private cluster (trust auth, fsync off); yield its libpq DSN; stop and remove it."""
    _require_postgres()
    folder = Path(tempfile.mkdtemp(prefix="tourniquet-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    try:
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres")
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w",
                     "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        try:
            yield f"host={folder} port={port} user=postgres dbname=postgres"
        finally:
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
