"""Lock 1,000 accounts through the engine and through a bare ldap3 loop, on the same slapd.

    .venv/bin/python bench/bench_lock.py [--accounts 1000]

- ``engine (Prefect)``: the ``tourniquet-playbook`` flow (Prefect test harness, flow heartbeat off)
  running a credential-misuse-like playbook: resolve every id, then a ``directory.lock`` step
  (for_each, retries 2, concurrency 4) — per account: policy check, state read, modify, read-back,
  journal intent + outcome (fsync'ed), one Prefect task run.
- ``engine (threads)``: the same playbook through the engine without Prefect (``tourniquet plan`` path).
- ``ldap3 modify``: one ``pwdAccountLockedTime`` replace per known DN — the floor.
- ``ldap3 search+modify``: find each uid, then modify (what a careful script would do).

Prints each time and its ratio to the bare modify loop. The directory is unlocked between runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import ldap3
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tourniquet.demo.practitioners import generate, write_ldif  # noqa: E402
from tourniquet.demo.slapd import Slapd  # noqa: E402

SUFFIX = "dc=sante,dc=example"
PLAYBOOK = """\
playbook: bench-lock
version: 1
title: Lock accounts (benchmark)
inputs:
  accounts:
    type: list[str]
limits:
  max_accounts: {limit}
steps:
  - id: resolve
    action: directory.resolve
    with:
      ids: ${{{{ inputs.accounts }}}}
  - id: lock
    action: directory.lock
    for_each: ${{{{ steps.resolve.accounts }}}}
    with:
      account: ${{{{ item }}}}
    retries: 2
    timeout: 3600
"""


def admin(server: Slapd) -> ldap3.Connection:
    return ldap3.Connection(ldap3.Server(server.url), server.root_dn, server.root_password, auto_bind=True,
                            receive_timeout=30)


def locked_count(server: Slapd, base: str) -> int:
    connection = admin(server)
    entries = connection.extend.standard.paged_search(base, "(pwdAccountLockedTime=*)", attributes=["1.1"],
                                                      paged_size=500, generator=False)
    connection.unbind()
    return sum(1 for e in entries if e.get("type") == "searchResEntry")


def unlock_all(server: Slapd, dns: list[str]) -> None:
    connection = admin(server)
    for dn in dns:
        connection.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [])]})
    connection.unbind()


def bare_loop(server: Slapd, dns: list[str], uids: list[str], base: str, search: bool) -> float:
    connection = admin(server)
    started = time.perf_counter()
    for dn, uid in zip(dns, uids):
        if search:
            connection.search(base, f"(&(objectClass=inetOrgPerson)(uid={ldap3.utils.conv.escape_filter_chars(uid)}))",
                              attributes=["uid"])
            dn = connection.response[0]["dn"]
        connection.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])]})
    seconds = time.perf_counter() - started
    connection.unbind()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args()
    count = args.accounts

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from tourniquet.engine.execute import execute_playbook
    from tourniquet.flows.respond import run_playbook

    directory = generate(count, SUFFIX)
    dns = [p.dn for p in directory.practitioners]
    uids = [p.uid for p in directory.practitioners]
    with tempfile.TemporaryDirectory(prefix="bench-lock-") as name:
        folder = Path(name)
        server = Slapd(SUFFIX, "bench-root-secret", directory=folder / "slapd")
        server.configure(write_ldif(directory, folder / "data.ldif"))
        server.start()
        try:
            (folder / "secret").write_text(server.root_password)
            site = folder / "tourniquet.yaml"
            site.write_text(yaml.safe_dump({
                "site": "bench", "state_dir": str(folder / "state"), "evidence_dir": str(folder / "evidence"),
                "directory": {"url": server.url, "allow_plaintext": True, "bind_dn": server.root_dn,
                              "bind_password": {"file": str(folder / "secret")}, "base_dn": directory.people_dn,
                              "default_policy_dn": server.policy_dn, "timeout": 30},
                "tickets": {"kind": "file", "path": str(folder / "tickets")},
                "limits": {"max_accounts_ceiling": count},
            }))
            playbook = folder / "bench-lock.yaml"
            playbook.write_text(PLAYBOOK.format(limit=count))
            times: dict[str, float] = {}

            times["ldap3 modify"] = bare_loop(server, dns, uids, directory.people_dn, search=False)
            assert locked_count(server, directory.people_dn) == count
            unlock_all(server, dns)
            times["ldap3 search+modify"] = bare_loop(server, dns, uids, directory.people_dn, search=True)
            assert locked_count(server, directory.people_dn) == count
            unlock_all(server, dns)

            started = time.perf_counter()
            summary = execute_playbook(str(playbook), {"accounts": uids}, dry_run=False, incident="bench-threads",
                                       site=str(site))
            times["engine (threads)"] = time.perf_counter() - started
            assert summary.status == "completed", summary.error
            assert locked_count(server, directory.people_dn) == count
            unlock_all(server, dns)

            with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
                with prefect_test_harness(server_startup_timeout=120):
                    started = time.perf_counter()
                    result = run_playbook(str(playbook), {"accounts": uids}, incident="bench-prefect", site=str(site))
                    times["engine (Prefect)"] = time.perf_counter() - started
            assert result["status"] == "completed", result
            assert locked_count(server, directory.people_dn) == count
        finally:
            server.stop()

    floor = times["ldap3 modify"]
    print(f"lock {count:,} accounts on one slapd (2 cores, ppolicy, NoSync):")
    for label, seconds in times.items():
        print(f"  {label:20} {seconds:7.2f} s  {count / seconds:7.0f}/s  {seconds / floor:6.1f}x the bare modify loop")


if __name__ == "__main__":
    main()
