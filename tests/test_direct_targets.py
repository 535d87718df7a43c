"""A playbook that hands an action a DN directly: the action's target is re-read, whatever it was given.

``directory.resolve`` refuses an OU, a group, a policy or a service entry, but a playbook may skip it
and pass ``account: {dn: "ou=people,…", uid: "x"}`` to ``directory.lock`` itself. That passes
``validate`` (the shape is an account's); at run time the guard re-reads every account this run did
not resolve, by the same rules as ``directory.resolve``, and refuses what is not a person's account:
nothing is written on the OU (a whole-directory diff on the real slapd says so), the refusal is in
the journal and the run's summary, and the report says it was refused, not "x applied lock".
The site's ``base_dn`` is the whole suffix here, so OUs, groups and policies all lie within it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import write_site
from tests.helpers import LdapAdmin
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.journal import read_journal


def _playbook(tmp_path: Path, targets: list[dict[str, str]]) -> Path:
    steps = [{"id": f"lock_{n}", "action": "directory.lock", "on_error": "continue", "with": {"account": target}}
             for n, target in enumerate(targets)]
    path = tmp_path / "direct.yaml"
    path.write_text(yaml.safe_dump({"playbook": "direct", "version": 1, "title": "Lock by DN",
                                    "limits": {"max_accounts": 20}, "steps": steps}, sort_keys=False))
    return path


def test_a_step_given_an_ou_group_or_policy_as_its_account_is_refused_at_run_time_and_nothing_is_written(
        tmp_path: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin,
        capsys: pytest.CaptureFixture[str]) -> None:
    suffix = practitioners.suffix
    not_people = {
        "people-ou": f"ou=people,{suffix}",
        "group": f"cn=chu-lille,ou=groups,{suffix}",
        "policy": f"cn=default,ou=policies,{suffix}",
        "services-ou": f"ou=services,{suffix}",
    }
    person = practitioners.practitioners[14]
    targets = [{"dn": dn, "uid": name} for name, dn in not_people.items()]
    targets.append({"dn": person.dn, "uid": person.uid, "groups": []})
    site = write_site(tmp_path, slapd, practitioners, directory={"base_dn": suffix})
    playbook = _playbook(tmp_path, targets)
    assert main(["validate", str(playbook)]) == 0, capsys.readouterr()
    before = ldap_admin.dump()
    try:
        summary = execute_playbook(str(playbook), {}, dry_run=False, site=str(site))

        after = ldap_admin.dump()
        changed = {dn for dn in set(before) | set(after) if before.get(dn) != after.get(dn)}
        assert changed == {person.dn.lower()}, "only the person's entry was written"
        refused = {r["account"]: r["reason"] for r in summary.refused}
        assert set(refused) == set(not_people), summary.refused
        assert all("not a person's account" in why for why in refused.values()), refused
        records = list(read_journal(tmp_path / "evidence" / summary.incident / "journal.jsonl"))
        journaled = {r["account"] for r in records if r["type"] == "refused"}
        assert journaled == set(not_people)
        applied = {r["target"] for r in records if r["type"] == "change" and r["outcome"] == "applied"}
        assert applied == {person.uid}
        report = Path(str(summary.report)).read_text()
        assert "people-ou" in report and "not a person's account" in report
    finally:
        ldap_admin.reset_all(practitioners)


def _rechained(records: list[dict[str, Any]]) -> bytes:
    """The journal as a forger re-hashes it after an edit (the journal's own formula)."""
    def canonical(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()

    previous, lines = "0" * 64, []
    for record in records:
        record = {**record, "prev": previous}
        record.pop("hash", None)
        record["hash"] = previous = hashlib.sha256(canonical(record)).hexdigest()
        lines.append(canonical(record) + b"\n")
    return b"".join(lines)


def test_an_undo_call_edited_to_name_an_ou_is_refused_and_nothing_is_written_on_it(
        site_file: Path, tmp_path: Path, practitioners: Directory, ldap_admin: LdapAdmin,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The journal's undo calls are only as trustworthy as the journal: `undo` re-reads each target too."""
    person = practitioners.practitioners[15]
    summary = execute_playbook("credential-misuse", {"accounts": [person.uid]}, dry_run=False, site=str(site_file))
    assert summary.status == "completed", summary.error
    journal = tmp_path / "evidence" / summary.incident / "journal.jsonl"
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    ou = f"ou=people,{practitioners.suffix}"
    for record in records:
        if record["type"] == "change" and record.get("operation") == "lock" and record.get("undo"):
            record["undo"]["arguments"]["account"].update(dn=ou, uid="x")
    journal.write_bytes(_rechained(records))
    before = ldap_admin.attributes(ou)

    assert main(["undo", summary.incident, "--site", str(site_file)]) == 1

    out = capsys.readouterr().out
    assert f"failed {person.uid}: undo lock via directory.unlock — " in out and "not a person's account" in out, out
    assert "failed evidence: undo seal via evidence.seal — refusing to seal" in out, "the edited journal: not sealed"
    assert ldap_admin.attributes(ou) == before, "nothing written on the OU"
    undone = [r for r in (json.loads(line) for line in journal.read_text().splitlines())
              if r["type"] == "undo" and r.get("operation") == "lock"]
    assert [r["status"] for r in undone] == ["failed"] and "not a person's account" in undone[0]["error"], undone
