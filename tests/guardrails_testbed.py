"""A private slapd for the guardrail, fault, fuzz and undo tests, and small helpers around it.

These tests stop and restart slapd, so they get their own server (same build as conftest's)
instead of disturbing the session one. Besides the 60 generated practitioners it holds
protected look-alikes *inside* the people subtree, where the playbook can reach them:
``breakglass-ward`` (uid glob), ``dr-admin`` (member of cn=admins) and ``vip.director``
(protected by a DN pattern written with odd case and spaces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SUFFIX, write_site
from tests.helpers import LdapAdmin, require_slapd
from tourniquet.config import load_site
from tourniquet.demo.practitioners import Directory, generate, luhn_check_digit, write_ldif
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.loader import load_playbook
from tourniquet.engine.run import ApprovalDecision, ApprovalRequest, PlaybookRun, RunSummary
from tourniquet.journal import read_journal
from tourniquet.site import Site

PLAYBOOK = Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml"
PEOPLE = f"ou=people,{SUFFIX}"
ADMINS = f"cn=admins,ou=groups,{SUFFIX}"
#: Protected look-alikes in the people subtree: uid → extra LDIF lines.
PROTECTED_UIDS = ("breakglass-ward", "dr-admin", "vip.director")
#: breakglass-ward's RPPS number: an alert may name a protected account by RPPS too.
PROTECTED_RPPS = "1099999999" + luhn_check_digit("1099999999")
SITE_PROTECTED = ["uid=breakglass-*", "memberOf=CN=Admins , ou=groups,*", "UID=VIP.Director , OU=People,DC=sante,DC=example"]


def _extra_ldif() -> str:
    entries = []
    for uid in PROTECTED_UIDS:
        member = f"memberOf: {ADMINS}\n" if uid == "dr-admin" else ""
        member += f"employeeNumber: {PROTECTED_RPPS}\n" if uid == "breakglass-ward" else ""
        entries.append(f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
                       f"mail: {uid}@sante.example\nuserPassword: pw-{uid}\n{member}")
    entries.append(f"dn: {ADMINS}\nobjectClass: groupOfNames\ncn: admins\nmember: uid=dr-admin,{PEOPLE}\n")
    return "\n".join(entries)


def start_private_slapd(folder: Path) -> tuple[Slapd, Directory]:
    require_slapd()
    directory = generate(60, SUFFIX)
    folder.mkdir(parents=True, exist_ok=True)
    ldif = write_ldif(directory, folder / "data.ldif")
    with ldif.open("a", encoding="utf-8") as handle:
        handle.write("\n" + _extra_ldif() + "\n")
    server = Slapd(SUFFIX, "root-secret-for-guardrails", directory=folder)
    server.configure(ldif)
    server.start()
    return server, directory


@pytest.fixture(scope="module")
def private_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Slapd, Directory]]:
    server, directory = start_private_slapd(tmp_path_factory.mktemp("guardrails-slapd"))
    yield server, directory
    server.stop()


@pytest.fixture
def testbed(private_slapd: tuple[Slapd, Directory], tmp_path: Path) -> Iterator["Testbed"]:
    server, directory = private_slapd
    if server.process is None:
        server.start()  # a previous test left it stopped
    bed = Testbed(server, directory, tmp_path)
    yield bed
    if bed.slapd.process is None:
        bed.slapd.start()
    bed.restore()
    bed.admin.close()


class Testbed:
    """One test's view: the private slapd, a site file in tmp_path, an admin connection, the baseline dump."""

    __test__ = False

    def __init__(self, slapd: Slapd, directory: Directory, tmp_path: Path) -> None:
        self.slapd = slapd
        self.directory = directory
        self.tmp_path = tmp_path
        self.site_file = write_site(tmp_path, slapd, directory, limits={
            "max_accounts_ceiling": 50, "protected": SITE_PROTECTED, "approval_timeout_ceiling": "24h"})
        self.admin = LdapAdmin(slapd)
        self.baseline = self.admin.dump()

    @property
    def people(self) -> list[Any]:
        return self.directory.practitioners

    def dump(self) -> dict[str, dict[str, list[str]]]:
        self.admin.close()
        self.admin = LdapAdmin(self.slapd)  # the old connection died if slapd restarted
        return self.admin.dump()

    def changed(self) -> dict[str, dict[str, tuple[list[str] | None, list[str] | None]]]:
        """Per entry DN, each attribute that differs from the baseline: (before, after)."""
        now = self.dump()
        diff: dict[str, dict[str, tuple[list[str] | None, list[str] | None]]] = {}
        for dn in set(now) | set(self.baseline):
            old, new = self.baseline.get(dn, {}), now.get(dn, {})
            attributes = {a: (old.get(a), new.get(a)) for a in set(old) | set(new) if old.get(a) != new.get(a)}
            if attributes:
                diff[dn] = attributes
        return diff

    def restore(self) -> None:
        """Put every lock/reset attribute back as it was at the start of the test."""
        admin = LdapAdmin(self.slapd)
        try:
            for dn, attributes in self.changed().items():
                if "userPassword" in attributes:  # scrambled: the password first (ppolicy stamps it), then the rest
                    admin.set(dn, {"userPassword": attributes["userPassword"][0] or []})
                restore = {a: (old or []) for a, (old, _new) in attributes.items() if a != "userPassword"}
                admin.set(dn, {**restore, "pwdChangedTime": restore.get("pwdChangedTime", []),
                               "pwdReset": restore.get("pwdReset", [])}, relax=True)
        finally:
            admin.close()

    def site(self) -> Site:
        return Site(load_site(self.site_file))

    def playbook(self, **changes: Any) -> Path:
        """credential-misuse.yaml with top-level or per-step changes (``steps={"lock": {...}}``)."""
        data = yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))
        for key, value in changes.items():
            if key == "steps":
                for step in data["steps"]:
                    step.update(value.get(step["id"], {}))
            elif key == "limits":
                data["limits"].update(value)
            else:
                data[key] = value
        path = self.tmp_path / f"playbook-{len(list(self.tmp_path.glob('playbook-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def run(self, accounts: list[str], *, playbook: Path | None = None, dry_run: bool = False,
            incident: str | None = None, approver: Callable[[ApprovalRequest], ApprovalDecision] | None = None,
            on_step: Callable[[str, str], None] | None = None) -> RunSummary:
        site = self.site()
        try:
            kwargs: dict[str, Any] = {"approver": approver} if approver else {}
            run = PlaybookRun(load_playbook(playbook or PLAYBOOK), {"accounts": accounts}, site,
                              incident=incident, dry_run=dry_run, on_step=on_step, **kwargs)
            return run.execute()
        finally:
            site.close()

    def journal(self, incident: str) -> list[dict[str, Any]]:
        return list(read_journal(self.tmp_path / "evidence" / incident / "journal.jsonl"))


def approve(request: ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision(True, "incident-lead", f"approved {len(request.accounts)} accounts")


def applied_counts(records: list[dict[str, Any]], operation: str) -> dict[str, int]:
    """How many times each account had ``operation`` applied, according to the journal."""
    counts: dict[str, int] = {}
    for record in records:
        if record.get("type") == "change" and record.get("outcome") == "applied" and record.get("operation") == operation:
            counts[record["target"]] = counts.get(record["target"], 0) + 1
    return counts


def locked_uids(testbed: Testbed) -> set[str]:
    now = testbed.dump()
    return {attrs["uid"][0] for dn, attrs in now.items() if "pwdAccountLockedTime" in attrs and "uid" in attrs}
