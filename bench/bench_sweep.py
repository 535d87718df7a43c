"""Streaming-search benchmark: sweep a big directory with the connector, through each LDAP transport, vs bare ldap3
and python-ldap paged searches.

    .venv/bin/python bench/bench_sweep.py --entries 1000000

Generates N practitioner entries as LDIF (streamed to disk, never held in memory), loads them
with ``slapadd -q`` into a throwaway slapd, then sweeps every entry twice, each sweep in its own
subprocess so that peak memory (``ru_maxrss``) belongs to that sweep alone:

- ``connector-ldap3`` and ``connector-libldap``: ``DirectoryClient.iter_entries`` (paged, one page in memory
  at a time) with ``transport: ldap3``, then ``transport: libldap``;
- ``ldap3``: ``conn.extend.standard.paged_search(..., generator=True)``, the pure-Python bare loop;
- ``libldap``: python-ldap's ``search_ext`` + ``result3`` a page at a time, OpenLDAP's C library's bare loop.

Prints entries seen, seconds, entries/s and peak RSS of each, and each transport's ratio to its library's bare loop.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUFFIX = "dc=sante,dc=example"
PASSWORD = "bench-root-secret"
ATTRIBUTES = ["uid", "cn", "mail", "employeeNumber", "memberOf", "pwdAccountLockedTime", "pwdReset"]


def write_ldif(path: Path, count: int) -> None:
    """N inetOrgPerson entries under ou=people, written as a stream (1M entries ≈ 330 MB)."""
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        out.write(f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: sante\no: bench\n\n")
        for ou in ("people", "groups", "policies"):
            out.write(f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n\n")
        out.write(f"dn: cn=default,ou=policies,{SUFFIX}\nobjectClass: device\nobjectClass: pwdPolicy\n"
                  "cn: default\npwdAttribute: userPassword\npwdLockout: TRUE\n\n")
        for i in range(count):
            uid = f"p{i:07d}"
            out.write(
                f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                f"cn: Practitioner {i}\nsn: P{i}\ngivenName: Bench\nmail: {uid}@sante.example\n"
                f"employeeNumber: {10000000000 + i}\nuserPassword: pw-{uid}\n\n"
            )


def sweep(kind: str, url: str, base: str) -> None:
    """Run in a child process: sweep every account and print one JSON line."""
    started = time.perf_counter()
    count = 0
    if kind.startswith("connector-"):
        import os

        from tourniquet.connectors.directory import DirectoryClient, DirectoryConfig

        os.environ["BENCH_LDAP_PASSWORD"] = PASSWORD
        client = DirectoryClient(DirectoryConfig(
            url=url, allow_plaintext=True, bind_dn=f"cn=admin,{SUFFIX}",
            bind_password={"env": "BENCH_LDAP_PASSWORD"}, base_dn=base, page_size=500, timeout=60,
            transport=kind.removeprefix("connector-"),
        ))
        for _dn, _attributes in client.iter_entries(attributes=ATTRIBUTES):
            count += 1
        client.close()
    elif kind == "libldap":
        import ldap
        from ldap.controls.pagedresults import SimplePagedResultsControl

        connection = ldap.initialize(url)
        connection.simple_bind_s(f"cn=admin,{SUFFIX}", PASSWORD)
        page = SimplePagedResultsControl(True, size=500, cookie=b"")
        while True:
            message = connection.search_ext(base, ldap.SCOPE_SUBTREE, "(objectClass=inetOrgPerson)", ATTRIBUTES,
                                            serverctrls=[page])
            _, data, _, controls = connection.result3(message)
            count += sum(1 for dn, _ in data if dn)
            page.cookie = next((c.cookie for c in controls if c.controlType == page.controlType), b"")
            if not page.cookie:
                break
        connection.unbind_s()
    else:
        import ldap3

        connection = ldap3.Connection(ldap3.Server(url), f"cn=admin,{SUFFIX}", PASSWORD, auto_bind=True,
                                      receive_timeout=60)
        for entry in connection.extend.standard.paged_search(
            base, "(objectClass=inetOrgPerson)", attributes=ATTRIBUTES, paged_size=500, generator=True,
        ):
            if entry.get("type") == "searchResEntry":
                count += 1
        connection.unbind()
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"kind": kind, "entries": count, "seconds": seconds, "peak_mb": peak_kb / 1024}))


def baseline_rss(kind: str) -> float:
    """Peak RSS of a child that only imports what that sweep imports: the floor under its figure."""
    module = {"connector-ldap3": "tourniquet.connectors.directory.ldap3_connection",
              "connector-libldap": "tourniquet.connectors.directory.libldap", "libldap": "ldap"}.get(kind, "ldap3")
    code = f"import resource, {module}; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "URL", "BASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sweep(*args.child)
        return

    from tourniquet.demo.slapd import Slapd

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
        ldif = Path(folder) / "data.ldif"
        t0 = time.perf_counter()
        write_ldif(ldif, args.entries)
        t1 = time.perf_counter()
        server = Slapd(SUFFIX, PASSWORD, directory=Path(folder) / "slapd")
        server.configure(ldif)
        t2 = time.perf_counter()
        ldif.unlink()
        server.start(timeout=60)
        print(f"entries: {args.entries:,}  LDIF written in {t1 - t0:.1f}s, slapadd -q in {t2 - t1:.1f}s")
        try:
            results = {}
            for kind in ("ldap3", "connector-ldap3", "libldap", "connector-libldap"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", kind, server.url, f"ou=people,{SUFFIX}"],
                    capture_output=True, text=True, check=True, cwd=ROOT,
                )
                results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            server.stop()
    for kind, r in results.items():
        floor = baseline_rss(kind)
        print(f"{kind:17}  {r['entries']:>9,} entries  {r['seconds']:7.1f} s  {r['entries'] / r['seconds']:8,.0f}/s"
              f"  peak RSS {r['peak_mb']:6.1f} MB (imports alone: {floor:.1f} MB)")
    for kind in ("ldap3", "libldap"):
        c, b = results[f"connector-{kind}"], results[kind]
        print(f"ratio connector-{kind}/{kind}: time {c['seconds'] / b['seconds']:.2f}x, "
              f"peak RSS {c['peak_mb'] / b['peak_mb']:.2f}x")
    print(f"connector through ldap3 / through libldap: time "
          f"{results['connector-ldap3']['seconds'] / results['connector-libldap']['seconds']:.2f}x")


if __name__ == "__main__":
    main()
