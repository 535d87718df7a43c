"""Real servers for the benchmarks: a Prefect server (SQLite or PostgreSQL), a throwaway PostgreSQL, workers.

Benchmarks measure the real path, so they start what production runs: ``prefect server start`` in its
own process (its own ``PREFECT_HOME``), optionally on a PostgreSQL cluster started here with
``initdb``/``pg_ctl``, and ``prefect worker start`` processes on a process work pool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.postgresql import PG_BIN, cluster, free_port

__all__ = ["free_port", "postgres", "prefect_server", "prefect_worker", "PG_BIN"]

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))


@contextmanager
def postgres() -> Iterator[tuple[str, int]]:
    """A private PostgreSQL 15 cluster on loopback (trust auth, fsync on); yields (socket folder, port)."""
    if not (PG_BIN / "initdb").exists():
        raise SystemExit("PostgreSQL 15 missing: bash bin/setup.d/postgresql.sh")
    with cluster("max_connections=200", prefix="bench-pg-") as found:
        yield found


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"prefect server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"prefect server not healthy after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@contextmanager
def prefect_server(home: Path, *, database_url: str | None = None, timeout: float = 120.0) -> Iterator[dict[str, str]]:
    """``prefect server start`` on a free port; yields the environment a client or worker needs."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": url, "PREFECT_UI_API_URL": url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(url, process, log, timeout)
        yield {"PREFECT_HOME": str(home), "PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    finally:
        _stop(process)


@contextmanager
def prefect_worker(env: dict[str, str], pool: str, log: Path, *, extra: dict[str, str] | None = None) -> Iterator[None]:
    """A process worker on ``pool`` polling every second (the default 10 s would dominate small runs)."""
    environment = {**os.environ, **env, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5",
                   **(extra or {})}
    with log.open("wb") as out:
        process = subprocess.Popen([PREFECT, "worker", "start", "--pool", pool, "--type", "process"], env=environment,
                                   stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True)
    try:
        time.sleep(1.0)
        if process.poll() is not None:
            raise SystemExit(f"worker exited:\n{log.read_text()[-3000:]}")
        yield
    finally:
        _stop(process)
