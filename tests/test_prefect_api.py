"""Which Prefect server ``tourniquet run`` talks to: the one given, the site's running one, else a temporary one.

Scenario: a responder's machine where ``tourniquet server start`` left a server running (its status
file names it, and it answers): the run uses it, and says so. When the status file names a server
that no longer answers, or there is none, the run will start a temporary one (and time it). A
``PREFECT_API_URL`` given by the environment always wins.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_site
from tourniquet.cli.prefect_api import find_server
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd, find_free_port
from tourniquet.flows.local_server import status_file


def test_a_running_local_server_is_used_and_a_dead_one_is_not(
    prefect_harness: None, tmp_path: Path, slapd: Slapd, practitioners: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL

    running = str(PREFECT_API_URL.value())
    site = write_site(tmp_path, slapd, practitioners)
    state = tmp_path / "state"
    state.mkdir(parents=True, exist_ok=True)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_SERVER_LOGGING_LEVEL", raising=False)  # set for a temporary server: put back
    monkeypatch.setattr("tourniquet.cli.prefect_api._profile_url", lambda: "")

    status_file(state).write_text(json.dumps({"url": running, "pid": 0}))
    local = find_server(str(site))
    assert (local.kind, local.url) == ("local", running)
    assert local.describe() == f"  prefect: {running} (the site's local server)"

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    status_file(state).write_text(json.dumps({"url": f"http://127.0.0.1:{find_free_port()}/api", "pid": 0}))
    assert find_server(str(site)).kind == "temporary"

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert find_server(str(site)).kind == "configured"
