"""A responder installed the core only (``pip install tourniquet``): what the site asks for beyond it is named in
one line, with the command that installs it — at site load when the site file says so, never a traceback.

A missing package is made missing for real in this process (``sys.modules[name] = None`` makes Python's import
machinery answer "not installed", as on a machine without it). The fresh environment without any extra is
built for real in ``test_core_install.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tourniquet.cli.main import main
from tourniquet.config import load_site
from tourniquet.connectors.directory import DirectoryClient, DirectoryConfig
from tourniquet.drafts.timeline import draw_timeline
from tourniquet.errors import ConfigError
from tourniquet.extras import MissingExtra
from tourniquet.scope import Scope


def _site(tmp_path: Path, **sections: object) -> Path:
    config = {"site": "core-only", "state_dir": str(tmp_path / "state"), "evidence_dir": str(tmp_path / "evidence"),
              "directory": {"url": "ldaps://ldap.sante.example", "bind_dn": "cn=svc",
                            "bind_password": {"env": "UNUSED"}, "base_dn": "ou=people,dc=sante,dc=example"},
              "tickets": {"kind": "file", "path": str(tmp_path / "tickets")}, **sections}
    path = tmp_path / "tourniquet.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]


def test_a_site_asking_for_libldap_without_python_ldap_names_the_extra_at_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "ldap")
    path = _site(tmp_path, directory={"url": "ldaps://ldap.sante.example", "transport": "libldap", "bind_dn": "cn=svc",
                                      "bind_password": {"env": "UNUSED"}, "base_dn": "ou=people,dc=sante,dc=example"})

    with pytest.raises(MissingExtra) as raised:
        load_site(path)

    message = str(raised.value)
    assert "\n" not in message
    assert message == (f"{path}: directory.transport: libldap needs the 'libldap' extra, which is not installed: "
                       "pip install 'tourniquet[libldap]'")


def test_auto_falls_back_to_ldap3_without_python_ldap(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "ldap")
    config = DirectoryConfig(url="ldap://127.0.0.1:1", allow_plaintext=True, bind_dn="cn=svc",
                             bind_password={"env": "UNUSED"}, base_dn="dc=x")

    assert DirectoryClient(config, password="x").transport == "ldap3"
    assert "ldap" not in [m for m in sys.modules if sys.modules[m] is not None]


def test_a_postgresql_access_log_without_psycopg_names_the_extra_at_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "psycopg")
    path = _site(tmp_path, audit={"kind": "postgresql", "dsn": "host=127.0.0.1 dbname=dpi", "table": "access_log"})

    with pytest.raises(MissingExtra, match=r"audit.kind: postgresql needs the 'postgresql' extra.*"
                                           r"pip install 'tourniquet\[postgresql\]'$"):
        load_site(path)


def test_the_cli_prints_the_one_line_and_no_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _without(monkeypatch, "psycopg")
    path = _site(tmp_path, audit={"kind": "postgresql", "dsn": "host=127.0.0.1 dbname=dpi", "table": "access_log"})

    code = main(["plan", "credential-misuse", "--site", str(path), "--input", "accounts=jdupont"])

    err = capsys.readouterr().err
    assert code != 0
    assert "pip install 'tourniquet[postgresql]'" in err
    assert "Traceback" not in err and "ImportError" not in err and "ModuleNotFoundError" not in err


def test_the_timeline_without_matplotlib_is_one_line_naming_the_plots_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "matplotlib")
    scope = Scope.model_validate({"since": "2026-01-01T00:00:00Z", "until": "2026-01-31T00:00:00Z",
                                  "accounts": [{"account": "jdupont", "events": 3}], "total": {"account": "*"},
                                  "timeline": [{"account": "jdupont", "day": "2026-01-02", "events": 3,
                                                "anomalous": 1, "in_window": True}]})

    with pytest.raises(MissingExtra, match=r"^the timeline picture needs the 'plots' extra, which is not installed: "
                                           r"pip install 'tourniquet\[plots\]'$"):
        draw_timeline(scope, tmp_path / "timeline.png", {})
    assert not (tmp_path / "timeline.png").exists()


def test_missing_extra_is_a_configuration_error() -> None:
    assert issubclass(MissingExtra, ConfigError)


def test_the_core_dependencies_are_the_designs_five_and_the_extras_hold_the_rest() -> None:
    """Issue 28: prefect, ldap3, httpx, pyyaml, structlog — everything else is an extra a site asks for."""
    import re
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!\[ ;]", spec, maxsplit=1)[0].lower() for spec in project["dependencies"]}
    assert names == {"prefect", "ldap3", "httpx", "pyyaml", "structlog"}
    extras = project["optional-dependencies"]
    assert {"libldap", "postgresql", "plots", "docs", "test"} <= set(extras)
    assert any(spec.startswith("python-ldap") for spec in extras["libldap"])
    assert any(spec.startswith("psycopg") for spec in extras["postgresql"])
    assert any(spec.startswith("matplotlib") for spec in extras["plots"])
