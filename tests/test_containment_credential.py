"""The shipped credential-misuse playbook against a real slapd: the stolen password is dead, and only
a person's account is ever contained.

The attacker holds the practitioner's password. After the run, a helpdesk removes the lock by hand
(what happens when the practitioner calls): the stolen password must still not bind, nor change the
password. Then the ids that are not a person — the accounts' OU, groups, policies, service entries,
the suffix, the root DN — in every spelling and list form, are refused by ``plan`` and ``run`` before
any change (whole-directory diff), as are empty lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest

from tests.helpers import LdapAdmin, bind_result
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.errors import PlaybookError

pytestmark = pytest.mark.usefixtures("each_transport")

PLAYBOOK = "credential-misuse"


def _own_password_change(slapd: Slapd, dn: str, old: str, new: str) -> str:
    """What `ldappasswd -D dn -w old -s new` gets: the practitioner (or the thief) changing the password."""
    connection = ldap3.Connection(ldap3.Server(slapd.url, connect_timeout=5), dn, old, receive_timeout=5)
    if not connection.bind():
        return str(connection.result["description"])
    connection.extend.standard.modify_password(dn, old, new)
    outcome = str(connection.result["description"])
    connection.unbind()
    return outcome


def test_the_stolen_password_stays_dead_when_the_lock_is_removed_by_hand(
    site_file: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    victim = practitioners.practitioners[40]
    assert bind_result(slapd, victim.dn, victim.password) == "success"

    summary = execute_playbook(PLAYBOOK, {"accounts": [victim.uid], "reason": "ARS alert 7"}, dry_run=False,
                               site=str(site_file))

    assert summary.status == "completed", summary.error
    operations = [(c.step, c.operation, c.outcome) for c in summary.changes if c.system == "directory"]
    assert operations == [("scramble", "scramble_password", "applied"), ("lock", "lock", "applied"),
                          ("reset", "force_password_reset", "noop")], "scrambled first, then locked"
    assert bind_result(slapd, victim.dn, victim.password) == "invalidCredentials"

    ldap_admin.set(victim.dn, {"pwdAccountLockedTime": []})  # the helpdesk unlocks it by hand

    assert "pwdAccountLockedTime" not in ldap_admin.attributes(victim.dn, ["pwdAccountLockedTime"])
    assert bind_result(slapd, victim.dn, victim.password) == "invalidCredentials"
    assert _own_password_change(slapd, victim.dn, victim.password, "chosen-by-the-thief-1") == "invalidCredentials"
    journal = summary.journal.read_text() if summary.journal else ""
    assert victim.password not in journal
    report = summary.report.read_text() if summary.report else ""
    assert "scramble_password" in report and "nobody knows it" in report


def test_plan_shows_the_scramble_and_undo_says_the_old_password_cannot_come_back(
    site_file: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    victim = practitioners.practitioners[41]
    before = ldap_admin.dump()

    assert main(["plan", PLAYBOOK, "--site", str(site_file), "-i", f"accounts={victim.uid}"]) == 0
    plan = capsys.readouterr().out
    assert f"planned  {victim.uid}: scramble_password" in plan
    assert plan.index("scramble_password") < plan.index(": lock "), "the plan scrambles before it locks"
    assert ldap_admin.dump() == before

    summary = execute_playbook(PLAYBOOK, {"accounts": [victim.uid]}, dry_run=False, site=str(site_file))
    assert main(["undo", summary.incident, "--site", str(site_file)]) == 0
    said = capsys.readouterr().out
    assert "the old password cannot come back" in said
    assert bind_result(slapd, victim.dn, victim.password) == "invalidCredentials", "undo cannot bring it back"
    assert main(["reinstate", summary.incident, "--site", str(site_file)]) == 0
    assert "the old password cannot come back" in capsys.readouterr().out
    assert bind_result(slapd, victim.dn, victim.password) == "invalidCredentials"


# --------------------------------------------------------------------------- only persons are accounts


@pytest.fixture(scope="module")
def non_persons(slapd: Slapd, practitioners: Directory) -> Iterator[list[str]]:
    """Entries that are not a person's account, some of them *inside* the accounts' subtree."""
    people, suffix = practitioners.people_dn, practitioners.suffix
    inside = {
        f"ou=archive,{people}": {"objectClass": ["organizationalUnit"], "ou": ["archive"]},
        f"cn=chu-admins,{people}": {"objectClass": ["groupOfNames"], "cn": ["chu-admins"],
                                    "member": [practitioners.practitioners[0].dn]},
        f"cn=strict,{people}": {"objectClass": ["device", "pwdPolicy"], "cn": ["strict"],
                                "pwdAttribute": ["userPassword"], "pwdLockout": ["TRUE"]},
        f"uid=svc-sync,{people}": {"objectClass": ["account", "simpleSecurityObject"], "uid": ["svc-sync"],
                                   "userPassword": ["svc-secret"]},
        f"cn=portal,{people}": {"objectClass": ["applicationProcess"], "cn": ["portal"]},
    }
    admin = LdapAdmin(slapd)
    for dn, attributes in inside.items():
        assert admin.connection.add(dn, attributes=attributes), admin.connection.result
    group = f"cn={practitioners.practitioners[0].establishment},ou=groups,{suffix}"
    outside = [people, f"ou=groups,{suffix}", group, f"cn=default,ou=policies,{suffix}", f"ou=policies,{suffix}",
               f"ou=services,{suffix}", practitioners.breakglass_dn, suffix, slapd.root_dn]
    yield list(inside) + outside
    for dn in inside:
        admin.connection.delete(dn)
    admin.close()


def _spellings(dn: str) -> list[str]:
    """The same DN as people paste it: upper case, spaces after commas and around '=', an escaped '-'."""
    upper = ",".join(f"{a.upper()}={v}" for a, v in (rdn.split("=", 1) for rdn in dn.split(",")))
    spaced = ", ".join(dn.split(","))
    around = ",".join(rdn.replace("=", " = ") for rdn in dn.split(","))
    escaped = dn.replace("-", "\\2d", 1) if "-" in dn else dn.replace("e", "\\65", 1)
    return [dn, upper, spaced, around, escaped, f"  {dn}  "]


def _ids(non_persons: list[str]) -> list[str]:
    ids = [spelling for dn in non_persons for spelling in _spellings(dn)]
    ids += ["svc-sync", "chu-admins", "archive", "people", "breakglass-admin@x"]  # uid/mail forms of non-persons
    return list(dict.fromkeys(ids))


def test_at_least_fifty_non_person_ids_are_refused_by_plan_and_run_and_nothing_changes(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, non_persons: list[str]
) -> None:
    ids = _ids(non_persons)
    assert len(ids) >= 50
    before = ldap_admin.dump()
    for identifier in ids:
        for dry_run in (True, False):
            summary = execute_playbook(PLAYBOOK, {"accounts": [identifier]}, dry_run=dry_run, site=str(site_file))
            assert summary.status == "failed", (identifier, dry_run, summary.status)
            assert "no id named an account" in (summary.error or ""), (identifier, summary.error)
            assert not [c for c in summary.changes if c.outcome != "noop"], identifier
    assert ldap_admin.dump() == before, "not one attribute of the whole directory changed"
    assert not list((Path(site_file).parent / "tickets").glob("*.json")), "no ticket for 0 accounts"


def test_every_non_person_id_is_named_while_the_real_suspect_is_contained(
    site_file: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin, non_persons: list[str]
) -> None:
    """One alert naming a real practitioner among every non-person id: the practitioner is contained,
    each other id is refused by name, the run ends 'completed with errors'; on_unknown: stop changes nothing."""
    suspect = practitioners.practitioners[42]
    ids = _ids(non_persons)
    before = ldap_admin.dump()

    stopping = Path(site_file).parent / "stop.yaml"
    text = (Path(__file__).resolve().parents[1] / "playbooks" / f"{PLAYBOOK}.yaml").read_text()
    stopping.write_text(text.replace("on_unknown: continue", "on_unknown: stop"))
    stopped = execute_playbook(str(stopping), {"accounts": [suspect.uid, *ids]}, dry_run=False, site=str(site_file))
    assert stopped.status == "failed" and "on_unknown: stop" in (stopped.error or "")
    assert ldap_admin.dump() == before

    summary = execute_playbook(PLAYBOOK, {"accounts": [*ids[:30], suspect.uid, *ids[30:]]}, dry_run=False,
                               site=str(site_file))

    assert summary.status == "completed with errors"
    assert "resolve" in (summary.error or "")
    refused = {f["item"] for f in summary.failures if f["step"] == "resolve"}
    assert refused == set(ids)
    after = ldap_admin.dump()
    changed = {dn for dn in set(before) | set(after) if before.get(dn) != after.get(dn)}
    assert changed == {suspect.dn.lower()}
    assert bind_result(slapd, suspect.dn, suspect.password) == "invalidCredentials"
    ticket = json.loads(next((Path(site_file).parent / "tickets").glob("*.json")).read_text())
    assert "1 of " in ticket["title"] and " contained; refused: " in ticket["title"], ticket["title"]
    assert non_persons[0] in json.dumps(ticket), "the ticket names the refused ids"


@pytest.mark.parametrize("value", ["", ",,,", "[]", '["", "  "]', " , ,"])
def test_an_empty_or_blank_account_list_is_refused(
    site_file: Path, ldap_admin: LdapAdmin, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty list is refused as an input (before anything runs); a list of blanks, by the resolve step."""
    before = ldap_admin.dump()
    code = main(["plan", PLAYBOOK, "--site", str(site_file), "-i", f"accounts={value}"])
    printed = capsys.readouterr()
    assert code in (1, 2)
    assert "no account given" in printed.out or "'accounts' is an empty list" in printed.err
    try:
        summary = execute_playbook(PLAYBOOK, {"accounts": value}, dry_run=False, site=str(site_file))
    except PlaybookError as exc:
        assert "'accounts' is an empty list" in str(exc)
    else:
        assert summary.status == "failed" and "no account given" in (summary.error or "")
    assert ldap_admin.dump() == before


def test_a_json_list_with_the_accounts_ou_is_refused_by_the_cli_plan_and_the_prefect_run(
    prefect_harness: None, site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The exact input of the issue: ``-i 'accounts=["ou=people,<base>"]'``."""
    before = ldap_admin.dump()
    value = json.dumps([practitioners.people_dn])
    assert main(["plan", PLAYBOOK, "--site", str(site_file), "-i", f"accounts={value}"]) == 1
    out = capsys.readouterr().out
    assert "is the accounts' container" in out and practitioners.people_dn in out
    assert main(["run", PLAYBOOK, "--site", str(site_file), "-i", f"accounts={value}"]) == 1
    assert "is the accounts' container" in capsys.readouterr().err
    assert ldap_admin.dump() == before
