"""The data of the incident benchmark: three regional platforms, generated once, resumably, and not timed.

Per region (``hdf``, ``nor``, ``pdl``):

- a slapd of ``--practitioners`` (50,000) practitioners, configured once (``slapd-<region>/``, kept pristine:
  each benchmark run copies it);
- in one PostgreSQL cluster (``pg/``), a database per region holding the platform's own tables in its own
  column names (:data:`SCHEMAS`): the access log and the patients. A region keeps ``patients`` people
  (events / 100, at least 20,000); the first fifth of each region's people are people of the previous
  region — the same NIR under another local id (another numbering, or text ids). Seven in ten people have a
  NIR (everyone shared between regions has one).
- the compromised accounts (600 / 500 / 400): their owners' work over the 183 days and the planted attacks,
  from :mod:`tourniquet.demo.platform` (the styles the attribution benchmark plants: ``foreign``,
  ``office``, ``vpn_night``, ``burst``; starting 10 to 60 days before the end);
- every other practitioner's work, generated inside PostgreSQL (``generate_series``): office hours, the
  practitioner's two workstations, 80 % of patients from a caseload of 300, 3 % logins — until the region
  holds its third of ``--events``;
- the log rewritten in time order, as a platform appends it (each account's rows spread over the table).

Each part is marked done in ``done/`` when it is complete: an interrupted generation resumes where it stopped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.postgresql import PG_BIN, free_port

__all__ = ["REGIONS", "COMPROMISED", "SCHEMAS", "END", "DAYS", "SUFFIX", "Sizes", "generate", "running_postgres",
           "compromised_uids", "directory_of", "dsn"]

REGIONS = ("hdf", "nor", "pdl")
COMPROMISED = {"hdf": 600, "nor": 500, "pdl": 400}
END = datetime(2026, 11, 30, tzinfo=timezone.utc)
DAYS = 183
SUFFIX = "dc=sante,dc=example"
#: Each platform's own names: log table and columns, people table, its key and the field → column mapping.
SCHEMAS: dict[str, dict[str, Any]] = {
    "hdf": {"log": "journal_acces", "ts": "horodatage", "account": "utilisateur", "subject": "id_patient",
            "action": "code_action", "ip": "ip_source", "people": "patient", "key": "id_patient", "key_type": "bigint",
            "fields": {"nom": "nom", "prenom": "prenom", "age": "date_naissance", "telephone": "telephone",
                       "email": "email", "nir": "nir"}},
    "nor": {"log": "acces_dossier", "ts": "date_heure", "account": "login_ps", "subject": "ipp", "action": "action",
            "ip": "adresse_ip", "people": "usager", "key": "ipp", "key_type": "bigint",
            "fields": {"nom": "nom_usage", "prenom": "prenom_usuel", "age": "ne_le", "telephone": "tel_mobile",
                       "email": "courriel", "nir": "matricule_ins"}},
    "pdl": {"log": "audit_trail", "ts": "event_time", "account": "user_login", "subject": "patient_ref",
            "action": "event_code", "ip": "client_ip", "people": "dossier_patient", "key": "patient_ref",
            "key_type": "text", "fields": {"nom": "last_name", "prenom": "first_name", "age": "birth_date",
                                           "telephone": "phone", "email": "mail", "nir": "ssn"}},
}
_SURNAMES = "MARTIN BERNARD DUBOIS THOMAS ROBERT RICHARD PETIT DURAND LEROY MOREAU SIMON LAURENT".split()
_GIVEN = "Jeanne Marcel Louise Henri Suzanne Robert Yvette André Paulette Roger Denise René".split()


class Sizes:
    """What ``--events`` and ``--practitioners`` mean for each region."""

    def __init__(self, events: int, practitioners: int = 50_000) -> None:
        self.events, self.practitioners = events, practitioners
        self.per_region = events // len(REGIONS)
        self.patients = max(20_000, events // 100)
        self.shared = self.patients // 5

    def local_key(self, region: str, i: int) -> Any:
        """The region's own id of its i-th person (another numbering in each region, text in one)."""
        return {"hdf": i, "nor": 7_000_000 + i, "pdl": f"PDL{i:09d}"}[region]

    def key_sql(self, region: str, column: str) -> str:
        return {"hdf": column, "nor": f"(7000000 + {column})", "pdl": f"('PDL' || lpad({column}::text, 9, '0'))"}[region]


def compromised_uids(region: str, directory: Any) -> list[str]:
    """The region's compromised accounts: spread over its directory (every n-th practitioner)."""
    people = directory.practitioners
    step = max(1, len(people) // COMPROMISED[region])
    return [p.uid for p in people[::step][:COMPROMISED[region]]]


def directory_of(region: str, sizes: Sizes) -> Any:
    from tourniquet.demo.practitioners import generate as practitioners

    return practitioners(sizes.practitioners, SUFFIX, seed=7 + REGIONS.index(region))


# --------------------------------------------------------------------------- PostgreSQL


def _as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=600)


@contextmanager
def running_postgres(data: Path) -> Iterator[tuple[str, int]]:
    """The benchmark's cluster (created on first use, fsync on), on a free port; yields (socket folder, port)."""
    folder = data / "pg"
    if not (folder / "data" / "PG_VERSION").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres")
    port = free_port()
    options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200 "
               "-c shared_buffers=512MB -c work_mem=32MB -c maintenance_work_mem=512MB -c max_wal_size=4GB")
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "-o", options,
                 "start")
    try:
        yield str(folder), port
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop")


def dsn(server: tuple[str, int], database: str) -> str:
    return f"host={server[0]} port={server[1]} user=postgres dbname={database}"


# --------------------------------------------------------------------------- generation


def _done(data: Path, part: str) -> bool:
    return (data / "done" / part).exists()


def _mark(data: Path, part: str) -> None:
    (data / "done").mkdir(parents=True, exist_ok=True)
    (data / "done" / part).touch()


def generate(data: Path, sizes: Sizes, say: Any = print) -> None:
    """Every part not yet done: the directories, the databases, the people, the logs, the indexes."""
    from tourniquet.demo.practitioners import write_ldif
    from tourniquet.demo.slapd import Slapd

    data.mkdir(parents=True, exist_ok=True)
    for region in REGIONS:
        if not _done(data, f"slapd-{region}"):
            started = time.monotonic()
            shutil.rmtree(data / f"slapd-{region}", ignore_errors=True)
            directory = directory_of(region, sizes)
            server = Slapd(SUFFIX, "bench-root-secret", directory=data / f"slapd-{region}", size_limit=100_000)
            server.configure(write_ldif(directory, data / f"slapd-{region}.ldif"))
            (data / f"slapd-{region}.ldif").unlink()
            _mark(data, f"slapd-{region}")
            say(f"{region}: slapd of {sizes.practitioners:,} practitioners in {time.monotonic() - started:.0f} s")
    with running_postgres(data) as server:
        for region in REGIONS:
            _region(data, server, region, sizes, say)


def _region(data: Path, server: tuple[str, int], region: str, sizes: Sizes, say: Any) -> None:
    import psycopg

    s = SCHEMAS[region]
    f = s["fields"]
    if not _done(data, f"db-{region}"):
        with psycopg.connect(dsn(server, "postgres"), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {region}")
            connection.execute(f"CREATE DATABASE {region}")
        with psycopg.connect(dsn(server, region), autocommit=True) as connection:
            connection.execute(f"CREATE TABLE {s['people']} ({s['key']} {s['key_type']} PRIMARY KEY, {f['nom']} text, "
                               f"{f['prenom']} text, {f['age']} date, {f['telephone']} text, {f['email']} text, "
                               f"{f['nir']} text)")
            connection.execute(f"CREATE TABLE {s['log']} ({s['ts']} timestamptz NOT NULL, {s['account']} text NOT NULL, "
                               f"{s['subject']} {s['key_type']}, {s['action']} text NOT NULL, {s['ip']} text)")
        _mark(data, f"db-{region}")
    if not _done(data, f"people-{region}"):
        started = time.monotonic()
        _people(server, region, sizes)
        _mark(data, f"people-{region}")
        say(f"{region}: {sizes.patients:,} people in {time.monotonic() - started:.0f} s")
    if not _done(data, f"compromised-{region}"):
        started = time.monotonic()
        count = _compromised(data, server, region, sizes)
        _mark(data, f"compromised-{region}")
        say(f"{region}: {count:,} accesses of the {COMPROMISED[region]} compromised accounts "
            f"in {time.monotonic() - started:.0f} s")
    if not _done(data, f"background-{region}"):
        started = time.monotonic()
        count = _background(server, region, sizes)
        _mark(data, f"background-{region}")
        say(f"{region}: {count:,} accesses of the other practitioners in {time.monotonic() - started:.0f} s")
    if not _done(data, f"order-{region}") and not _done(data, f"index-{region}"):  # (older data: as it is)
        started = time.monotonic()
        _time_order(server, region)
        _mark(data, f"order-{region}")
        say(f"{region}: log rewritten in time order in {time.monotonic() - started:.0f} s")
    if not _done(data, f"index-{region}"):
        started = time.monotonic()
        with psycopg.connect(dsn(server, region), autocommit=True) as connection:
            connection.execute(f"CREATE INDEX IF NOT EXISTS {s['log']}_account_time ON {s['log']} "
                               f"({s['account']}, {s['ts']})")
            connection.execute("VACUUM ANALYZE")
        _mark(data, f"index-{region}")
        say(f"{region}: index and statistics in {time.monotonic() - started:.0f} s")


def _time_order(server: tuple[str, int], region: str) -> None:
    """The log as a platform appends it: in time order, each account's rows spread over the whole table
    (generated account by account, the compromised accounts' rows would sit together and read fast)."""
    import psycopg

    s = SCHEMAS[region]
    with psycopg.connect(dsn(server, region), autocommit=True) as connection:
        connection.execute("SET work_mem = '1GB'")
        connection.execute(f"DROP TABLE IF EXISTS {s['log']}_ordered")
        connection.execute(f"CREATE TABLE {s['log']}_ordered AS SELECT * FROM {s['log']} ORDER BY {s['ts']}")
        connection.execute(f"ALTER TABLE {s['log']}_ordered ALTER COLUMN {s['ts']} SET NOT NULL")
        connection.execute(f"ALTER TABLE {s['log']}_ordered ALTER COLUMN {s['account']} SET NOT NULL")
        connection.execute(f"ALTER TABLE {s['log']}_ordered ALTER COLUMN {s['action']} SET NOT NULL")
        connection.execute(f"DROP TABLE {s['log']}")
        connection.execute(f"ALTER TABLE {s['log']}_ordered RENAME TO {s['log']}")


def _people(server: tuple[str, int], region: str, sizes: Sizes) -> None:
    """The region's people, in SQL; person ``g`` (national numbering) has the NIR ``nir(g)`` wherever he is."""
    import psycopg

    s, r, p = SCHEMAS[region], REGIONS.index(region), sizes.patients
    previous = (r - 1) % len(REGIONS)
    person = f"(CASE WHEN i < {sizes.shared} THEN {previous * p} + {p - sizes.shared} + i ELSE {r * p} + i END)"
    body = f"(1850578000000 + {person})"
    surnames = "ARRAY[" + ",".join(f"'{n}'" for n in _SURNAMES) + "]"
    given = "ARRAY[" + ",".join(f"'{n}'" for n in _GIVEN) + "]"
    with psycopg.connect(dsn(server, region), autocommit=True) as connection:
        connection.execute(f"TRUNCATE {s['people']}")
        connection.execute(
            f"INSERT INTO {s['people']} SELECT {sizes.key_sql(region, 'i')}, "
            f"({surnames})[1 + abs(hashint8extended(i, 1)) % {len(_SURNAMES)}], "
            f"({given})[1 + abs(hashint8extended(i, 2)) % {len(_GIVEN)}], "
            f"DATE '1930-01-01' + (abs(hashint8extended(i, 3)) % 32000)::int, "
            f"CASE WHEN abs(hashint8extended(i, 4)) % 10 < 6 THEN '06' || lpad((i % 100000000)::text, 8, '0') END, "
            f"CASE WHEN abs(hashint8extended(i, 5)) % 100 < 45 THEN 'p' || i || '@example.fr' END, "
            f"CASE WHEN i < {sizes.shared} OR i >= {p - sizes.shared} OR abs(hashint8extended({person}, 6)) % 10 < 7 "
            f"THEN {body}::text || lpad((97 - {body} % 97)::text, 2, '0') END "
            f"FROM generate_series(0, {p - 1}) i")


def _compromised(data: Path, server: tuple[str, int], region: str, sizes: Sizes) -> int:
    """The compromised accounts' owners at work and their attackers (demo platform), mapped on the region's people."""
    import psycopg

    from tourniquet.demo.platform import STYLES, build_platform

    s = SCHEMAS[region]
    users = compromised_uids(region, directory_of(region, sizes))
    universe = min(60_000, sizes.patients)
    stride = max(1, sizes.patients // universe)
    platform = build_platform(users, users, end=END, days=DAYS, regions=1, patients_per_region=universe,
                              attack_days_ago=tuple(range(10, 61, 5)), styles=STYLES, attack_per_day=40,
                              seed=31 + REGIONS.index(region))
    count = 0
    with psycopg.connect(dsn(server, region), autocommit=True) as connection:
        connection.execute(f"DELETE FROM {s['log']} WHERE {s['account']} = ANY(%s)", (users,))
        with connection.cursor() as cursor:
            columns = f"{s['ts']}, {s['account']}, {s['subject']}, {s['action']}, {s['ip']}"
            with cursor.copy(f"COPY {s['log']} ({columns}) FROM STDIN") as copy:
                for access in platform.accesses():
                    subject = None if access.patient is None else sizes.local_key(region, access.patient * stride)
                    copy.write_row((access.ts, access.user, subject, access.code, access.ip))
                    count += 1
    (data / f"compromised-{region}.count").write_text(str(count))
    return count


def _background(server: tuple[str, int], region: str, sizes: Sizes) -> int:
    """Everyone else's work, in SQL, until the region holds its share of the events (batches of 5 M)."""
    import psycopg

    s, r, p = SCHEMAS[region], REGIONS.index(region), sizes.patients
    directory = directory_of(region, sizes)
    compromised = set(compromised_uids(region, directory))
    others = [u.uid for u in directory.practitioners if u.uid not in compromised]
    start = END - timedelta(days=DAYS)
    with psycopg.connect(dsn(server, region), autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS bench_practitioner (idx int PRIMARY KEY, uid text)")
        connection.execute("TRUNCATE bench_practitioner")
        with connection.cursor() as cursor:
            with cursor.copy("COPY bench_practitioner FROM STDIN") as copy:
                for idx, uid in enumerate(others):
                    copy.write_row((idx, uid))
        have = connection.execute(f"SELECT count(*) FROM {s['log']}").fetchone()[0]  # type: ignore[index]
        wanted, n = max(0, sizes.per_region - have), len(others)
        caseload = f"((a::bigint * 7919 + (h % 300) * 104729) % {p})"
        subject = (f"CASE WHEN roll < 3 THEN NULL WHEN roll < 20 THEN {sizes.key_sql(region, f'(h % {p})')} "
                   f"ELSE {sizes.key_sql(region, caseload)} END")
        code = ("CASE WHEN roll < 3 THEN 'CONNEXION' WHEN roll < 55 THEN 'CONSULT_FICHE' WHEN roll < 85 THEN "
                "'RECH_PATIENT' WHEN roll < 95 THEN 'EDIT_ORIENTATION' ELSE 'CONSULT_ADMIN' END")
        ip = f"'10.{10 + r}.' || (a % 7 + 1) || '.' || (2 + a % 248)"
        done = 0
        while done < wanted:
            batch = min(5_000_000, wanted - done)
            connection.execute(
                f"INSERT INTO {s['log']} ({s['ts']}, {s['account']}, {s['subject']}, {s['action']}, {s['ip']}) "
                f"SELECT TIMESTAMPTZ '{start.isoformat()}' + d * INTERVAL '1 day' + (28800 + sec) * INTERVAL '1 second', "
                f"b.uid, {subject}, {code}, {ip} FROM (SELECT abs(hashint8extended(g, 11)) % {n} AS a, "
                f"abs(hashint8extended(g, 12)) % {DAYS} AS d, abs(hashint8extended(g, 13)) % 36000 AS sec, "
                f"abs(hashint8extended(g, 14)) % 100 AS roll, abs(hashint8extended(g, 15)) AS h "
                f"FROM generate_series({have + done}, {have + done + batch - 1}) g) x "
                f"JOIN bench_practitioner b ON b.idx = x.a")
            done += batch
        connection.execute("DROP TABLE bench_practitioner")
    return wanted
