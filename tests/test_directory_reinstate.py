"""False alarm: the incident's accounts are put back, by incident id, exactly as their snapshots recorded them."""

from __future__ import annotations

from pathlib import Path

import ldap3
import pytest

from tests.directory_helpers import containment_playbook
from tests.helpers import LdapAdmin, bind_result
from tests.test_directory_openldap import restore_groups  # noqa: F401  (fixture)
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.errors import TourniquetError
from tourniquet.flows.reinstate import reinstate
from tourniquet.flows.respond import run_playbook
from tourniquet.journal import read_journal, verify_chain

pytestmark = pytest.mark.usefixtures("each_transport")


def test_reinstate_flow_undoes_the_incident_by_id(
    prefect_harness: None, site_file: Path, tmp_path: Path, slapd: Slapd, practitioners: Directory,
    ldap_admin: LdapAdmin, restore_groups: None,  # noqa: F811
) -> None:
    suspects = [practitioners.practitioners[i] for i in (30, 31)]
    before = ldap_admin.dump()
    contained = run_playbook(str(containment_playbook(tmp_path)), {"accounts": [p.uid for p in suspects]},
                             site=str(site_file))
    assert all(bind_result(slapd, p.dn, p.password) == "invalidCredentials" for p in suspects)

    results = reinstate(contained["incident"], site=str(site_file))

    assert sorted((r["target"], r["status"]) for r in results) == [(p.uid, "done") for p in suspects]
    assert ldap_admin.dump() == before
    assert all(bind_result(slapd, p.dn, p.password) == "success" for p in suspects)
    journal = Path(contained["journal"])
    verify_chain(journal)
    assert main(["undo", contained["incident"], "--site", str(site_file)]) == 0
    assert ldap_admin.dump() == before, "undo after reinstate finds nothing left to reverse"
    assert main(["reinstate", contained["incident"], "--site", str(site_file)]) == 0
    assert ldap_admin.dump() == before, "a second reinstate is a no-op"


def test_reinstate_refuses_an_account_someone_else_changed_and_reports_it(
    prefect_harness: None, site_file: Path, tmp_path: Path, slapd: Slapd, practitioners: Directory,
    ldap_admin: LdapAdmin, restore_groups: None,  # noqa: F811
) -> None:
    touched, clean = practitioners.practitioners[32], practitioners.practitioners[33]
    summary = execute_playbook(str(containment_playbook(tmp_path)), {"accounts": [touched.uid, clean.uid]},
                               dry_run=False, site=str(site_file))
    other_group = f"cn=chu-nantes,ou=groups,{practitioners.suffix}"
    ldap_admin.connection.modify(other_group, {"member": [(ldap3.MODIFY_ADD, [touched.dn])]})
    try:
        with pytest.raises(TourniquetError, match=f"{touched.uid}: .*now a member of {other_group}"):
            reinstate(summary.incident, site=str(site_file))
        assert bind_result(slapd, touched.dn, touched.password) == "invalidCredentials", "refused: left contained"
        assert bind_result(slapd, clean.dn, clean.password) == "success"
        refused = [r for r in read_journal(summary.journal) if r["type"] == "reinstate"]
        assert [r["account"] for r in refused] == [touched.uid]
    finally:
        ldap_admin.connection.modify(other_group, {"member": [(ldap3.MODIFY_DELETE, [touched.dn])]})


def test_the_reinstate_playbook_restores_named_accounts_from_another_incident(
    site_file: Path, tmp_path: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin,
    restore_groups: None,  # noqa: F811
) -> None:
    suspect = practitioners.practitioners[34]
    before = ldap_admin.dump()
    contained = execute_playbook(str(containment_playbook(tmp_path)), {"accounts": [suspect.uid]}, dry_run=False,
                                 site=str(site_file))

    summary = execute_playbook("reinstate", {"incident": contained.incident, "accounts": [suspect.rpps]},
                               dry_run=False, site=str(site_file))

    assert summary.status == "completed", summary.failures
    assert ldap_admin.dump() == before
    assert bind_result(slapd, suspect.dn, suspect.password) == "success"
