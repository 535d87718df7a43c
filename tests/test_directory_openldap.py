"""The directory connector on a real OpenLDAP slapd (ppolicy): a lock that really locks, a reset that
really forces a new password, groups taken away and given back, and an account brought back exactly
as its snapshot recorded it after a false alarm.
"""

from __future__ import annotations

import json
from pathlib import Path

import ldap3
import pytest
from structlog.testing import capture_logs

from tests.conftest import write_site
from tests.directory_helpers import call, containment_playbook
from tests.helpers import VOLATILE, LdapAdmin, bind_result
from tourniquet.config import load_site
from tourniquet.connectors.directory import DirectoryClient
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd, find_free_port
from tourniquet.engine.execute import execute_playbook
from tourniquet.engine.undo import undo_incident
from tourniquet.errors import AccountNotFound, ConfigError, PermanentError, TransientError, UnsafeToChange
from tourniquet.journal import read_journal
from tourniquet.site import Site

pytestmark = pytest.mark.usefixtures("each_transport")


@pytest.fixture
def restore_groups(ldap_admin: LdapAdmin, practitioners: Directory):
    """Put every practitioner back in its establishment group after the test (tests share one slapd)."""
    yield
    for person in practitioners.practitioners:
        group = f"cn={person.establishment},ou=groups,{practitioners.suffix}"
        members = ldap_admin.attributes(group, ["member"]).get("member", [])
        if person.dn.lower() not in {m.lower() for m in members}:
            ldap_admin.connection.modify(group, {"member": [(ldap3.MODIFY_ADD, [person.dn])]})


def test_a_locked_account_can_no_longer_log_in(site: Site, slapd: Slapd, practitioners: Directory) -> None:
    suspect, bystander = practitioners.practitioners[5], practitioners.practitioners[6]
    account = site.directory.resolve(suspect.uid)

    result, _ = call(site, "directory.lock", account=account)

    assert result.outcome == "applied"
    assert bind_result(slapd, suspect.dn, suspect.password) == "invalidCredentials"
    assert bind_result(slapd, bystander.dn, bystander.password) == "success"


def test_a_reset_account_binds_but_every_search_is_refused_until_it_changes_its_password(
    site: Site, slapd: Slapd, practitioners: Directory
) -> None:
    suspect = practitioners.practitioners[7]
    account = site.directory.resolve(suspect.rpps)

    result, _ = call(site, "directory.force_password_reset", account=account)

    assert result.outcome == "applied"
    session = ldap3.Connection(ldap3.Server(slapd.url), suspect.dn, suspect.password, receive_timeout=5)
    assert session.bind(), "the stolen password still binds: the user must be able to change it"
    session.search(practitioners.people_dn, "(uid=*)", attributes=["uid"])
    assert session.result["result"] == 50  # insufficientAccessRights until the password is changed
    session.unbind()


def test_lock_under_a_policy_without_pwdlockout_fails_loudly_and_changes_nothing(
    site: Site, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    suspect = practitioners.practitioners[8]
    ldap_admin.set(suspect.dn, {"pwdPolicySubentry": [f"cn=no-lockout,ou=policies,{practitioners.suffix}"]})
    account = site.directory.resolve(suspect.uid)

    with pytest.raises(UnsafeToChange, match="no pwdLockout: TRUE"):
        call(site, "directory.lock", account=account)

    assert "pwdAccountLockedTime" not in ldap_admin.attributes(suspect.dn)
    assert bind_result(slapd, suspect.dn, suspect.password) == "success", "which is why the lock must not pretend"


def test_the_playbook_reports_the_ineffective_lock_as_a_failure(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    suspect = practitioners.practitioners[9]
    ldap_admin.set(suspect.dn, {"pwdPolicySubentry": [f"cn=no-lockout,ou=policies,{practitioners.suffix}"]})

    summary = execute_playbook("credential-misuse", {"accounts": [suspect.uid]}, dry_run=False, site=str(site_file))

    assert summary.status == "failed"
    assert "pwdLockout" in (summary.error or "")


def test_containment_twice_changes_nothing_the_second_time(
    site_file: Path, tmp_path: Path, practitioners: Directory, ldap_admin: LdapAdmin, restore_groups: None,
    each_transport: str,
) -> None:
    suspects = [practitioners.practitioners[i] for i in (12, 13)]
    playbook = containment_playbook(tmp_path)
    inputs = {"accounts": [p.uid for p in suspects]}
    first = execute_playbook(str(playbook), inputs, dry_run=False, site=str(site_file))
    after_first = ldap_admin.dump()

    second = execute_playbook(str(playbook), inputs, dry_run=False, site=str(site_file))

    assert first.status == second.status == "completed"
    assert {(c.operation, c.outcome) for c in first.changes} >= {("lock", "applied"), ("remove_group", "applied")}
    assert {c.outcome for c in second.changes} == {"noop"}
    assert ("remove_groups", "noop") in {(c.operation, c.outcome) for c in second.changes}
    assert ldap_admin.dump() == after_first
    started = next(read_journal(first.journal))  # the journal, then the report, say which library was used
    assert (started["status"], started["directory_transport"]) == ("started", each_transport)
    assert first.report is not None
    assert f"- directory reached through: {each_transport}" in first.report.read_text()


def test_removed_groups_are_recorded_and_put_back_by_undo(
    site_file: Path, site: Site, practitioners: Directory, ldap_admin: LdapAdmin, restore_groups: None
) -> None:
    suspect = practitioners.practitioners[0]  # chu-lille
    group = f"cn=chu-lille,ou=groups,{practitioners.suffix}"
    account = site.directory.resolve(suspect.uid)

    result, _ = call(site, "directory.remove_groups", incident="inc-groups", account=account,
                     patterns=["cn=chu-*,ou=groups,*"])

    assert result.groups == [group]
    assert "memberOf" not in ldap_admin.attributes(suspect.dn, ["memberOf"])
    journal = site.incident_dir("inc-groups") / "journal.jsonl"
    undo = [r["undo"] for r in read_journal(journal) if r["type"] == "change" and r.get("operation") == "remove_group"]
    assert undo == [{"action": "directory.add_groups", "arguments": {"account": account.model_dump(), "groups": [group]}}]

    undone = undo_incident("inc-groups", site)

    assert [u["status"] for u in undone] == ["done"]
    assert ldap_admin.attributes(suspect.dn, ["memberOf"])["memberOf"] == [group]


def test_a_non_matching_pattern_is_a_reported_noop(site: Site, practitioners: Directory) -> None:
    account = site.directory.resolve(practitioners.practitioners[1].uid)

    result, context = call(site, "directory.remove_groups", account=account, patterns=["cn=admins,*"])

    assert result.outcome == "noop" and result.groups == []
    assert [c.outcome for c in context.changes] == ["noop"]


def test_reinstate_brings_the_entry_back_attribute_for_attribute(
    site_file: Path, tmp_path: Path, practitioners: Directory, ldap_admin: LdapAdmin, slapd: Slapd,
    restore_groups: None,
) -> None:
    suspect = practitioners.practitioners[14]
    before = ldap_admin.dump()
    contained = execute_playbook(str(containment_playbook(tmp_path)), {"accounts": [suspect.uid]}, dry_run=False,
                                 site=str(site_file))
    assert contained.status == "completed"
    assert bind_result(slapd, suspect.dn, suspect.password) == "invalidCredentials"
    snapshot = json.loads((contained.journal.parent / "snapshots" / f"{suspect.uid}.json").read_text())
    site = Site(load_site(site_file))

    result, _ = call(site, "directory.reinstate", incident=contained.incident,
                     account=site.directory.resolve(suspect.uid))
    site.close()

    assert result.outcome == "applied" and result.groups_added and not result.password_replaced
    assert ldap_admin.dump() == before
    now = ldap_admin.attributes(suspect.dn)
    for name, values in snapshot["attributes"].items():
        if name not in VOLATILE:
            assert sorted(now.get(name, [])) == sorted(values), name
    assert bind_result(slapd, suspect.dn, suspect.password) == "success"


def test_reinstate_refuses_when_someone_else_changed_the_entry(
    site: Site, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    suspect = practitioners.practitioners[15]
    account = site.directory.resolve(suspect.uid)
    call(site, "directory.snapshot", incident="inc-refuse", account=account)
    call(site, "directory.lock", incident="inc-refuse", account=account)
    ldap_admin.set(suspect.dn, {"mail": ["attacker@evil.example"]})
    try:
        with pytest.raises(UnsafeToChange, match="mail changed since the snapshot"):
            call(site, "directory.reinstate", incident="inc-refuse", account=account)
        assert ldap_admin.attributes(suspect.dn)["pwdAccountLockedTime"], "still locked: nothing was changed"
    finally:
        ldap_admin.set(suspect.dn, {"mail": [suspect.mail]})


def test_reinstate_refuses_a_lock_this_incident_did_not_set(
    site: Site, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    suspect = practitioners.practitioners[16]
    account = site.directory.resolve(suspect.uid)
    call(site, "directory.snapshot", incident="inc-other-lock", account=account)
    ldap_admin.set(suspect.dn, {"pwdAccountLockedTime": ["20250101000000Z"]})  # someone else's lock

    with pytest.raises(UnsafeToChange, match="pwdAccountLockedTime .* this incident did not set it"):
        call(site, "directory.reinstate", incident="inc-other-lock", account=account)


def test_scrambled_password_kills_the_stolen_one_and_never_shows(
    site: Site, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    suspect = practitioners.practitioners[17]
    account = site.directory.resolve(suspect.uid)
    known = "Zx-known-only-to-this-test-9f3b2c7d1e"
    monkeypatch.setattr("tourniquet.actions.directory.passwords.secrets.token_urlsafe", lambda n: known)
    try:
        with capture_logs() as logs:
            first, _ = call(site, "directory.scramble_password", incident="inc-scramble", account=account)
            second, _ = call(site, "directory.scramble_password", incident="inc-scramble", account=account)
        reinstated, _ = call(site, "directory.reinstate", incident="inc-scramble", account=account,
                             snapshot=str(_snapshot_now(site, account, "inc-scramble-snap")))

        assert (first.outcome, second.outcome) == ("applied", "noop")
        assert bind_result(slapd, suspect.dn, suspect.password) == "invalidCredentials"
        assert bind_result(slapd, suspect.dn, known) == "success"  # the new one works, and is stored hashed:
        assert ldap_admin.attributes(suspect.dn, ["userPassword"])["userPassword"][0].startswith("{SSHA}")
        assert reinstated.password_replaced
        evidence = "".join(p.read_text() for p in site.config.evidence_dir.rglob("*") if p.is_file())
        assert known not in evidence and known not in repr(logs)
        assert "userPassword" not in evidence and "{SSHA}" not in evidence
    finally:
        ldap_admin.set(suspect.dn, {"userPassword": [suspect.password]})


def _snapshot_now(site: Site, account: object, incident: str) -> Path:
    result, _ = call(site, "directory.snapshot", incident=incident, account=account)
    return Path(result.file)


def test_snapshot_keeps_operational_attributes_and_no_secret(site: Site, practitioners: Directory) -> None:
    suspect = practitioners.practitioners[18]
    account = site.directory.resolve(suspect.mail)

    result, _ = call(site, "directory.snapshot", incident="inc-snap", account=account)

    stored = json.loads(Path(result.file).read_text())
    assert stored["attributes"]["memberOf"] == [f"cn={suspect.establishment},ou=groups,{practitioners.suffix}"]
    assert {"entryUUID", "createTimestamp"} <= set(stored["attributes"])
    assert stored["state"] == {"pwdAccountLockedTime": [], "pwdReset": [], "pwdPolicySubentry": []}
    assert stored["groups"] == stored["attributes"]["memberOf"] and stored["flavor"] == "openldap"
    assert "userPassword" not in stored["attributes"]


def test_paged_sweep_streams_and_survives_writes_in_between(
    tmp_path: Path, slapd: Slapd, practitioners: Directory
) -> None:
    site = Site(load_site(write_site(tmp_path, slapd, practitioners, directory={"page_size": 7})))
    directory = site.directory
    searches = []
    connection = directory.connection()
    original = connection.search
    connection.search = lambda *a, **k: searches.append(k.get("paged_size")) or original(*a, **k)

    seen = []
    for dn, attributes in directory.iter_entries(attributes=["uid"]):
        seen.append(attributes["uid"][0])
        directory.read(dn, ["uid"])  # another operation on the same connection, mid-sweep

    site.close()
    assert sorted(seen) == sorted(p.uid for p in practitioners.practitioners)
    assert searches.count(7) == -(-len(seen) // 7), "one search per page of 7"


def test_connection_errors_say_what_to_fix(tmp_path: Path, slapd: Slapd, practitioners: Directory) -> None:
    def client(**directory: object) -> DirectoryClient:
        password = str(directory.pop("password", slapd.root_password))
        config = load_site(write_site(tmp_path, slapd, practitioners, directory=directory)).directory
        return DirectoryClient(config, password=password)

    with pytest.raises(PermanentError, match="bind identity or its password is wrong"):
        client(password="wrong").read(practitioners.people_dn)
    with pytest.raises(TransientError, match="unreachable"):
        client(url=f"ldap://127.0.0.1:{find_free_port()}", timeout=2).read(practitioners.people_dn)
    practitioner = practitioners.practitioners[20]
    with pytest.raises(PermanentError, match="lacks the rights"):
        client(bind_dn=practitioner.dn, password=practitioner.password).replace(
            practitioners.practitioners[21].dn, {"pwdAccountLockedTime": ["000001010000Z"]})
    with pytest.raises(ConfigError, match="in clear"):
        client(allow_plaintext=False)


@pytest.mark.parametrize("hostile", ["*@sante.example", "x*)(mail=*@sante.example", "uid=*,ou=people,dc=sante,dc=example",
                                     "1010*", "*)(employeeNumber=*"])
def test_hostile_ids_of_every_kind_match_nothing(hostile: str, site: Site) -> None:
    """Each id kind (mail, DN, RPPS-like, uid) reaches the directory escaped: no wildcard, no extra clause."""
    with pytest.raises(AccountNotFound):
        site.directory.resolve(hostile)


def test_the_site_runs_through_the_transport_the_test_names(site: Site, each_transport: str) -> None:
    """Each test of this module runs once per LDAP library; this one checks the client really uses it."""
    assert site.directory.transport == each_transport
    assert site.directory.read(site.config.directory.base_dn, ["ou"]) is not None
    connection = site.directory.connection()
    assert type(connection).__module__.endswith({"ldap3": "ldap3_connection", "libldap": "libldap"}[each_transport])
