"""A long-lived local Prefect server that ``tourniquet run`` finds, instead of a temporary one per run.

Without ``PREFECT_API_URL``, Prefect starts a temporary server for each run: 15–20 s before the first
account is touched. ``tourniquet server start`` starts ``prefect server start`` once, in the
background, with its database under ``<state_dir>/prefect/``, and writes where it listens to
``<state_dir>/prefect-server.json``; ``tourniquet run`` (and ``approve``) use it while it answers.
A production site points ``PREFECT_API_URL`` at its own server instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tourniquet.errors import ConfigError

__all__ = ["start", "stop", "find", "status_file"]


def status_file(state_dir: Path) -> Path:
    return Path(state_dir) / "prefect-server.json"


def _healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _read(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(status_file(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def find(state_dir: Path) -> str | None:
    """The API URL of this site's local server, if one is running and answers."""
    data = _read(state_dir)
    if data is None or not _healthy(data["url"]):
        return None
    return str(data["url"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(state_dir: Path, *, port: int | None = None, timeout: float = 90.0) -> str:
    """Start the server (or return the one already running); its URL."""
    running = find(state_dir)
    if running:
        return running
    home = Path(state_dir) / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    prefect = str(Path(sys.executable).with_name("prefect"))
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": url, "PREFECT_UI_API_URL": url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    log = (home / "server.log").open("ab")
    process = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"prefect server exited ({process.returncode}); see {home / 'server.log'}")
        if _healthy(url):
            status_file(state_dir).write_text(json.dumps({"url": url, "pid": process.pid, "home": str(home)}),
                                              encoding="utf-8")
            return url
        time.sleep(0.3)
    os.killpg(process.pid, signal.SIGTERM)
    raise ConfigError(f"prefect server did not answer within {timeout:.0f}s; see {home / 'server.log'}")


def stop(state_dir: Path) -> bool:
    """Stop this site's local server; False when none was running."""
    data = _read(state_dir)
    status_file(state_dir).unlink(missing_ok=True)
    if data is None or not isinstance(data.get("pid"), int):
        return False
    try:
        os.killpg(data["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
