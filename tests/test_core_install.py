"""A responder's first ``pip install .``, on a machine with no compiler and no OpenLDAP headers, then the demo.

A fresh virtual environment gets the package without any extra: every dependency must come as a wheel
(``--only-binary=:all:``) and ``CC``/``CXX`` point at ``false``, so a package that needed building from C
would fail the install. Then ``tourniquet demo``, run from a copy of the checkout as after a clone, starts
a real slapd and contains three accounts with the credential-misuse playbook as a Prefect flow — through
ldap3, since python-ldap is not there — and the journal and report say so. A site asking for PostgreSQL
in that environment is refused in one line naming the extra. Takes about a minute with pip's cache warm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
import yaml

from tests.helpers import require_slapd
from tourniquet.demo.slapd import find_free_port

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = ("pyproject.toml", "README.md", "tourniquet", "sites", "playbooks")


def _clone(target: Path) -> Path:
    """The files a clone brings that the package and the demo need (no .venv, no caches)."""
    target.mkdir()
    for name in CHECKOUT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target / name)
    return target


def _environment(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TOURNIQUET_", "PREFECT_", "VIRTUAL_ENV"))}
    return {**keep, "CC": "false", "CXX": "false", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.mark.slow
def test_the_core_installs_without_a_compiler_and_contains_accounts_through_ldap3(tmp_path: Path) -> None:
    require_slapd()
    clone = _clone(tmp_path / "clone")
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"

    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--only-binary=:all:", str(clone)],
                             env=_environment(), capture_output=True, text=True, timeout=900)

    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    for module in ("ldap", "psycopg", "matplotlib"):  # no extra came along
        probe = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True)
        assert probe.returncode != 0, f"{module} is installed without its extra"

    state = tmp_path / "demo-state"
    demo = subprocess.run([str(environment / "bin" / "tourniquet"), "demo"], cwd=clone, capture_output=True, text=True,
                          timeout=600, env=_environment(TOURNIQUET_DEMO_STATE=str(state),
                                                        TOURNIQUET_DEMO_PORT=str(find_free_port())))

    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "directory reached through ldap3" in demo.stdout
    assert demo.stdout.count("-> invalidCredentials") == 3 and demo.stdout.rstrip().endswith("CONTAINED")
    assert "pip install 'tourniquet[plots]'" in demo.stdout  # the timeline picture, said not drawn
    assert "Traceback" not in demo.stderr
    journal = next(state.glob("evidence/*/journal.jsonl"))
    started = [json.loads(line) for line in journal.read_text().splitlines()][0]
    assert (started["type"], started["directory_transport"]) == ("run", "ldap3")
    assert "- directory reached through: ldap3" in (journal.parent / "report.md").read_text()

    site = tmp_path / "postgresql-site.yaml"
    site.write_text(yaml.safe_dump({
        "site": "core-only", "state_dir": str(tmp_path / "s"), "evidence_dir": str(tmp_path / "e"),
        "directory": {"url": "ldaps://ldap.sante.example", "bind_dn": "cn=svc", "bind_password": {"env": "X"},
                      "base_dn": "dc=sante,dc=example"},
        "tickets": {"kind": "file", "path": str(tmp_path / "t")},
        "audit": {"kind": "postgresql", "dsn": "host=127.0.0.1 dbname=dpi", "table": "access_log"},
    }))
    refused = subprocess.run([str(environment / "bin" / "tourniquet"), "plan", "credential-misuse", "--site", str(site),
                              "-i", "accounts=jdupont"], cwd=clone, capture_output=True, text=True, timeout=300,
                             env=_environment())

    assert refused.returncode != 0
    assert "audit.kind: postgresql needs the 'postgresql' extra" in refused.stderr
    assert "pip install 'tourniquet[postgresql]'" in refused.stderr and "Traceback" not in refused.stderr
