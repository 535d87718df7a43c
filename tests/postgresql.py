"""A throwaway PostgreSQL 15 for the tests that read an access log from a real server.

initdb as the ``postgres`` user into a temp dir, pg_ctl on a free loopback port with the unix
socket in the same dir (recipe: /work/shared/reference/systems.md). Missing PostgreSQL skips
locally and fails in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tourniquet.demo.slapd import find_free_port as free_port

__all__ = ["PG_BIN", "free_port", "cluster", "throwaway_postgres"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)


@contextmanager
def cluster(*settings: str, prefix: str = "tourniquet-pg-") -> Iterator[tuple[str, int]]:
    """A private cluster on loopback (trust auth, ``settings`` as ``name=value``); yield (socket folder, port).

    The benchmarks start theirs here too (with fsync on): one recipe for both.
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    options = " ".join([f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", *(f"-c {s}" for s in settings)])
    try:
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres")
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w",
                     "-o", options, "start")
        try:
            yield str(folder), port
        finally:
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    with cluster("fsync=off") as (folder, port):
        yield f"host={folder} port={port} user=postgres dbname=postgres"
