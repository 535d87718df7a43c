"""Every command that takes an incident id checks it the same way, before it touches a file.

An insider (or a pasted alert) hands ``conclude``, ``undo``, ``recover``, ``evidence verify`` and
``evidence seal`` an id that is a path (``../../x/y-1``, ``rc-1/../rc-2``) or 5,000 characters
long. Each command refuses it by name with exit 2, and nothing anywhere is written: not a journal
outside ``evidence_dir``, not another incident's journal (which would then verify TAMPERED), not a
lock or a plan in ``state_dir``. One real incident (``rc-2``, contained on the test slapd) is there
to be hit.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tourniquet.cli import incident as incident_cli
from tourniquet.cli.main import main
from tourniquet.config import load_site
from tourniquet.demo.practitioners import Directory
from tourniquet.engine.execute import execute_playbook
from tourniquet.engine.recover import conclude_investigation
from tourniquet.errors import PlaybookError
from tourniquet.site import Site
from tourniquet.untrusted import check_incident_id

HOSTILE = ["../../x/y-1", "rc-1/../rc-2", "x" * 5000, "../rc-2", "rc-2/", "/tmp/rc-2", ".."]


def _run(argv: list[str]) -> int:
    """The command's exit code (argparse ends a bad command line with SystemExit(2), as the shell sees it)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: size and modification time (a write changes one or the other)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def contained(site_file: Path, practitioners: Directory) -> str:
    summary = execute_playbook("credential-misuse", {"accounts": [practitioners.practitioners[21].uid]},
                               dry_run=False, incident="rc-2", site=str(site_file))
    assert summary.status == "completed", summary.error
    return summary.incident


COMMANDS = {
    "conclude": ["conclude", "--by", "dr-rssi", "--finding", "real: phishing"],
    "undo": ["undo"],
    "reinstate": ["reinstate"],
    "recover": ["recover", "--account", "someone", "--approved-by", "dr-rssi"],
    "verify": ["evidence", "verify"],
    "seal": ["evidence", "seal"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_path_or_an_overlong_id_is_refused_by_name_and_nothing_is_written(
        command: str, contained: str, site_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(incident_cli, "_is_terminal", lambda: True)
    outside = tmp_path.parent / "x"
    before, before_outside = _tree(tmp_path), outside.exists()
    capsys.readouterr()
    for hostile in HOSTILE:
        code = _run([*COMMANDS[command], hostile, "--site", str(site_file)])

        out, err = capsys.readouterr()
        assert code == 2, (hostile, out, err)
        assert "incident id" in err and ascii(hostile)[1:40] in err, (hostile, err)
        assert "internal error" not in err and "File name too long" not in err, err
        assert len(err) < 1000, "a 5,000-character id is named, not echoed whole"
    assert _tree(tmp_path) == before, "nothing written: not a journal, a lock, a plan or a report"
    assert outside.exists() == before_outside, "no folder made outside evidence_dir"
    assert main(["evidence", "verify", contained, "--site", str(site_file)]) == 0, capsys.readouterr().out


def test_the_engine_checks_the_id_too_whatever_calls_it(contained: str, site_file: Path, tmp_path: Path) -> None:
    """A Prefect flow or a script calls the engine, not the CLI: the same check, the same words."""
    site = Site(load_site(site_file))
    before = _tree(tmp_path)
    try:
        for hostile in HOSTILE:
            with pytest.raises(PlaybookError, match="incident id"):
                conclude_investigation(site, hostile, by="dr-rssi", finding="real: phishing")
            with pytest.raises(PlaybookError, match="incident id"):
                site.incident_dir(hostile)
            with pytest.raises(PlaybookError, match="incident id"):
                site.plan_dir(hostile)
    finally:
        site.close()
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("fine", ["rc-2", "INC-2042", "a", "A.b_c:d-e", "9" * 128])
def test_ids_the_run_accepts_pass_the_same_check(fine: str) -> None:
    assert check_incident_id(fine) == fine
    assert os.sep not in fine


def test_a_run_across_sites_checks_the_id_before_it_names_the_national_folder() -> None:
    """The national summary's folder is named from the id before any region runs: the same check, first."""
    from tourniquet.engine.execute import planned_incident

    for hostile in HOSTILE:
        with pytest.raises(PlaybookError, match="incident id"):
            planned_incident("credential-misuse", {"accounts": ["jdupont"]}, hostile)
    assert planned_incident("credential-misuse", {"accounts": ["jdupont"]}, "rc-2") == "rc-2"
