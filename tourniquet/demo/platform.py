"""A regional e-health platform's access log in its own vocabulary, with known ground truth.

What such platforms really keep: ``journal_acces(horodatage, utilisateur, id_patient, code_action,
ip_source)`` where each action code is a screen showing some fields, and a ``patient`` table where
many people have no phone, e-mail or NIR. Several regions' worth of patients; practitioners who work
as practitioners do (a caseload revisited, new patients every day, their hospital's network, the VPN
now and then, a late evening sometimes, night shifts, emergency departments at all hours); and
**planted attackers** on some accounts from a known start:

    foreign      a new network (an anonymising VPS range), mostly at night, patients of every region
    office       a new network during office hours, patients outside the caseload
    vpn_night    the hospital's own VPN gateway at hours the owner does not work (a day worker's night, a
                 night nurse's afternoon; an emergency account works at all hours: a new network instead),
                 patients outside the caseload
    burst        one day of mass scraping from a new network, then a few quiet visits

Each shows at least two of the three signs :mod:`tourniquet.attribution` reads (new network, unusual hour,
patient outside the caseload). ``lookalike`` (not in :data:`STYLES`) shows one only — the owner's own
workstation at the owner's hours, patients outside the caseload — to measure what attribution cannot see.

Owners are not perfectly regular either: now and then an evening at home from their own connection
(a new network at an unusual hour — the honest source of false alarms in the benchmark).

Every access carries ``planted`` (the truth for attribution benchmarks); :meth:`Platform.truth`
computes, straight from the generator's own records, the figures a correct scope must give.
Everything is deterministic for a seed and streamed (ten million accesses never sit in memory).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tourniquet.demo.access_log import make_nir

__all__ = ["Patient", "Owner", "Plant", "PlatformAccess", "Platform", "Truth", "build_platform", "write_platform_sqlite",
           "site_audit",
           "ACTION_FIELDS", "SUBJECT_FIELDS", "CATEGORIES", "STYLES", "LOOKALIKE"]

ACTION_FIELDS: dict[str, list[str]] = {
    "CONSULT_FICHE": ["nom", "prenom", "age", "telephone", "email"],
    "RECH_PATIENT": ["nom", "prenom", "age"],
    "EDIT_ORIENTATION": ["nom", "prenom", "age"],
    "CONSULT_ADMIN": ["nom", "prenom", "age", "telephone", "email", "nir"],
    "CONNEXION": [],
}
SUBJECT_FIELDS = {"nom": "nom", "prenom": "prenom", "age": "date_naissance", "telephone": "telephone",
                  "email": "email", "nir": "nir"}
CATEGORIES = {"nom": "identity", "prenom": "identity", "age": "identity", "telephone": "contact",
              "email": "contact", "nir": "social_security_number"}
STYLES = ("foreign", "office", "vpn_night", "burst")
LOOKALIKE = "lookalike"
VPN = "172.16.0.10"
TIME = "%Y-%m-%d %H:%M:%S"
_SURNAMES = ["MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY", "MOREAU",
             "SIMON", "LAURENT", "LEFEBVRE", "MICHEL", "GARCIA", "DAVID", "BERTRAND", "ROUX", "VINCENT", "FOURNIER"]
_GIVEN = ["Jeanne", "Marcel", "Louise", "Henri", "Suzanne", "Robert", "Yvette", "André", "Paulette", "Roger",
          "Denise", "René", "Simone", "Lucien", "Odette", "Gérard", "Colette", "Maurice", "Ginette", "Jacques"]


@dataclass(frozen=True, slots=True)
class Patient:
    id: int
    region: int
    nom: str
    prenom: str
    date_naissance: date
    telephone: str | None
    email: str | None
    nir: str | None

    def value(self, field: str) -> Any:
        return getattr(self, SUBJECT_FIELDS[field])


@dataclass
class Owner:
    """A practitioner's account and how its owner works."""

    user: str
    region: int
    role: str                    # day | night | emergency
    workstations: list[str]
    caseload: list[int]
    uses_vpn: bool


@dataclass(frozen=True)
class Plant:
    user: str
    style: str
    start: datetime
    per_day: int


@dataclass(frozen=True, slots=True)
class PlatformAccess:
    ts: datetime
    user: str
    patient: int | None
    code: str
    ip: str
    planted: bool


@dataclass
class Truth:
    """What a correct scope says for some accounts over their windows."""

    events: dict[str, int]
    planted: dict[str, int]
    people: int
    people_by_category: dict[str, int]
    people_by_account: dict[str, int]
    records_by_category: dict[str, int]
    no_contact: int
    subjects: set[int] = field(default_factory=set)


@dataclass
class Platform:
    regions: int
    patients: list[Patient]
    owners: list[Owner]
    plants: dict[str, Plant]
    start: datetime
    end: datetime
    seed: int

    def patient(self, number: int) -> Patient:
        return self.patients[number]

    # ---------------------------------------------------------------- the log, streamed

    def accesses(self) -> Iterator[PlatformAccess]:
        """Day by day, each account's accesses (owners' work and planted attacks), in time order per account."""
        rng = random.Random(self.seed * 7919 + 1)
        per_region = [[p.id for p in self.patients if p.region == r] for r in range(self.regions)]
        days = (self.end - self.start).days
        caseloads = {owner.user: list(owner.caseload) for owner in self.owners}  # grows as owners meet patients
        # every patient an attacked owner ever saw (the attacker reads others); kept for attacked owners only
        seen = {owner.user: set(owner.caseload) if owner.user in self.plants else None for owner in self.owners}
        for offset in range(days):
            day = self.start + timedelta(days=offset)
            for owner in self.owners:
                yield from _owner_day(owner, caseloads[owner.user], seen[owner.user], day, rng, per_region)
                plant = self.plants.get(owner.user)
                if plant is not None and day >= plant.start.replace(hour=0, minute=0, second=0):
                    yield from _attack_day(plant, owner, seen[owner.user], day, rng, len(self.patients))

    def site_audit(self, **source: Any) -> dict[str, Any]:
        """The site file's ``audit:`` section for this platform (see :func:`site_audit`)."""
        return site_audit(**source)

    # ---------------------------------------------------------------- ground truth

    def truth(self, windows: dict[str, tuple[datetime, datetime]],
              accesses: Iterable[PlatformAccess] | None = None) -> Truth:
        """People per category (a field counts only when the person's record holds it), events per account."""
        events = dict.fromkeys(windows, 0)
        planted = dict.fromkeys(windows, 0)
        by_person: dict[int, set[str]] = {}
        by_account: dict[str, set[int]] = {a: set() for a in windows}
        records: dict[str, int] = {}
        for access in accesses if accesses is not None else self.accesses():
            window = windows.get(access.user)
            if window is None or not window[0] <= access.ts < window[1]:
                continue
            events[access.user] += 1
            planted[access.user] += access.planted
            if access.patient is None:
                continue
            person = self.patients[access.patient]
            shown = {CATEGORIES[f] for f in ACTION_FIELDS[access.code] if person.value(f) is not None}
            for category in shown:
                records[category] = records.get(category, 0) + 1
            by_person.setdefault(access.patient, set()).update(shown)
            by_account[access.user].add(access.patient)
        categories: dict[str, int] = {}
        for shown in by_person.values():
            for category in shown:
                categories[category] = categories.get(category, 0) + 1
        no_contact = sum(1 for p in by_person if self.patients[p].telephone is None and self.patients[p].email is None)
        return Truth(events=events, planted=planted, people=len(by_person),
                     people_by_category=dict(sorted(categories.items())),
                     people_by_account={a: len(s) for a, s in by_account.items()},
                     records_by_category=dict(sorted(records.items())), no_contact=no_contact,
                     subjects=set(by_person))


def site_audit(**source: Any) -> dict[str, Any]:
    """The site file's ``audit:`` section in the platform's vocabulary (no view, no fields column);
    ``source``: kind, path or dsn …, and ``table`` / ``subjects_table`` when schema-qualified."""
    table, subjects = source.pop("table", "journal_acces"), source.pop("subjects_table", "patient")
    return {**source, "table": table,
            "columns": {"timestamp": "horodatage", "account": "utilisateur", "subject": "id_patient",
                        "action": "code_action", "source_ip": "ip_source"},
            "action_fields": ACTION_FIELDS,
            "subjects": {"table": subjects, "key": "id_patient", "fields": SUBJECT_FIELDS},
            "categories": CATEGORIES}


# --------------------------------------------------------------------------- building one


def build_platform(
    users: Sequence[str],
    compromised: Sequence[str] = (),
    *,
    end: datetime,
    days: int = 150,
    regions: int = 3,
    patients_per_region: int = 4000,
    attack_days_ago: Sequence[int] = (45, 20, 12, 30),
    styles: Sequence[str] = STYLES,
    attack_per_day: int = 40,
    seed: int = 15,
) -> Platform:
    """Patients of ``regions`` regions, an owner per user, attackers on ``compromised`` accounts.

    The n-th compromised account is attacked from ``attack_days_ago[n % len]`` days before ``end``
    (at a random hour of that day), in style ``styles[n % len]``.
    """
    rng = random.Random(seed)
    end = end.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    patients = [_patient(n, n // patients_per_region, rng) for n in range(regions * patients_per_region)]
    owners = []
    for index, user in enumerate(users):
        region = index % regions
        role = rng.choices(("day", "night", "emergency"), (0.8, 0.12, 0.08))[0]
        base = region * patients_per_region
        caseload = rng.sample(range(base, base + patients_per_region), rng.randrange(150, 400))
        site = 1 + index % 7
        workstations = [f"10.{10 + region}.{site}.{rng.randrange(2, 250)}" for _ in range(2)]
        owners.append(Owner(user, region, role, workstations, caseload, uses_vpn=rng.random() < 0.4))
    plants = {}
    roles = {owner.user: owner.role for owner in owners}
    for n, user in enumerate(compromised):
        ago, style = attack_days_ago[n % len(attack_days_ago)], styles[n % len(styles)]
        low, high = _attack_hours(style, roles.get(user, "day"))
        moment = end - timedelta(days=ago) + timedelta(hours=rng.randrange(low, high), minutes=rng.randrange(60))
        plants[user] = Plant(user, style, moment, attack_per_day)
    return Platform(regions, patients, owners, plants, start, end, seed)


def _attack_hours(style: str, role: str) -> tuple[int, int]:
    """The hours of the day an attack style works in, given the owner's role (its first access too)."""
    if style == "office":
        return 9, 17
    if style == "vpn_night":
        return (10, 16) if role == "night" else (1, 5)
    if style == LOOKALIKE:
        return {"day": (9, 17), "night": (20, 24)}.get(role, (8, 16))
    return 0, 24


def _patient(number: int, region: int, rng: random.Random) -> Patient:
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 365 * 90))
    sex = rng.choice("12")
    department = ("59", "76", "44")[region % 3]
    nir = make_nir(sex, born.year % 100, born.month, department, f"{rng.randrange(1, 999):03d}",
                   rng.randrange(1, 999)) if rng.random() < 0.7 else None
    phone = f"0{rng.choice('67')}{rng.randrange(10**8):08d}" if rng.random() < 0.6 else None
    given, surname = rng.choice(_GIVEN), rng.choice(_SURNAMES)
    email = f"{given.lower()}.{surname.lower()}{number}@example.fr" if rng.random() < 0.45 else None
    return Patient(number, region, surname, given, born, phone, email, nir)


def _code(rng: random.Random) -> str:
    roll = rng.random()
    return ("CONSULT_FICHE" if roll < 0.55 else "RECH_PATIENT" if roll < 0.85
            else "EDIT_ORIENTATION" if roll < 0.95 else "CONSULT_ADMIN")


def _owner_day(owner: Owner, caseload: list[int], seen: set[int] | None, day: datetime, rng: random.Random,
               per_region: list[list[int]]) -> Iterator[PlatformAccess]:
    weekday = day.weekday()
    if owner.role == "day":
        if weekday >= 5 or rng.random() < 0.05:
            return
        start_hour, hours = 8, 10 + (1 if rng.random() < 0.03 else 0)  # now and then a late evening
        count, new_share = rng.randrange(15, 40), 0.2
    elif owner.role == "night":
        if rng.random() < 0.5:
            return
        start_hour, hours, count, new_share = 20, 10, rng.randrange(8, 25), 0.3
    else:
        if rng.random() < 0.3:
            return
        start_hour, hours, count, new_share = rng.choice((0, 8, 16)), 8, rng.randrange(30, 60), 0.7
    ip = VPN if owner.uses_vpn and rng.random() < 0.1 else rng.choice(owner.workstations)
    if owner.role == "day" and rng.random() < 0.005:  # an evening at home, from the home connection
        ip, start_hour, hours, count = f"90.{rng.randrange(1, 250)}.{rng.randrange(256)}.{rng.randrange(2, 250)}", 20, 2, 6
    region = per_region[owner.region]
    seconds = sorted(rng.sample(range(hours * 3600), count))
    login = day + timedelta(hours=start_hour, seconds=max(0, seconds[0] - 60))
    yield PlatformAccess(login, owner.user, None, "CONNEXION", ip, False)
    for second in seconds:
        if rng.random() < new_share:
            patient = rng.choice(region)
            if seen is not None:
                seen.add(patient)
            if len(caseload) < 2000:
                caseload.append(patient)
        else:
            patient = rng.choice(caseload)
        yield PlatformAccess(day + timedelta(hours=start_hour, seconds=second), owner.user, patient, _code(rng), ip,
                             False)


def _attack_day(plant: Plant, owner: Owner, seen: set[int] | None, day: datetime, rng: random.Random,
                patients: int) -> Iterator[PlatformAccess]:
    first_day = day.date() == plant.start.date()
    style = plant.style
    if style == "burst":
        count = plant.per_day * 25 if first_day else (rng.randrange(5, 10) if rng.random() < 0.3 else 0)
    else:
        if not first_day and rng.random() < 0.25:  # low and slow: not every day
            return
        count = rng.randrange(plant.per_day // 2, plant.per_day * 3 // 2)
    if count == 0:
        return
    hours = _attack_hours(style, owner.role)
    if style == "vpn_night" and owner.role != "emergency":
        ip = VPN
    elif style == "office":
        ip = f"45.84.{rng.randrange(1, 4)}.{rng.randrange(2, 250)}"
    elif style == LOOKALIKE:
        ip = rng.choice(owner.workstations)
    else:
        ip = f"185.220.101.{rng.randrange(2, 250)}"
    floor = day + timedelta(hours=hours[0])
    if first_day:
        floor = max(floor, plant.start)
    span = int((day + timedelta(hours=hours[1]) - floor).total_seconds())
    if span <= 60:
        floor, span = plant.start, 3600
    if style == "foreign" and not first_day and rng.random() < 0.6:
        floor, span = day + timedelta(hours=1), 5 * 3600  # mostly at night
    offsets = sorted(rng.sample(range(span), min(count, span)))
    yield PlatformAccess(floor + timedelta(seconds=max(0, offsets[0] - 30)) if not first_day else floor,
                         owner.user, None, "CONNEXION", ip, True)
    for offset in offsets:
        patient = rng.randrange(patients)
        while seen is not None and patient in seen:  # outside the caseload
            patient = rng.randrange(patients)
        code = "CONSULT_ADMIN" if rng.random() < 0.15 else rng.choice(("CONSULT_FICHE", "RECH_PATIENT"))
        yield PlatformAccess(floor + timedelta(seconds=offset), owner.user, patient, code, ip, True)


# --------------------------------------------------------------------------- writing it


PATIENT_DDL = ("CREATE TABLE patient (id_patient INTEGER PRIMARY KEY, region TEXT, nom TEXT, prenom TEXT, "
               "date_naissance TEXT, telephone TEXT, email TEXT, nir TEXT)")
JOURNAL_DDL = ("CREATE TABLE journal_acces (horodatage TEXT NOT NULL, utilisateur TEXT NOT NULL, id_patient INTEGER, "
               "code_action TEXT NOT NULL, ip_source TEXT)")


def write_platform_sqlite(platform: Platform, path: str | Path, accesses: Iterable[PlatformAccess] | None = None,
                          batch: int = 100_000) -> int:
    """The platform's own schema in SQLite: ``patient`` and ``journal_acces`` (indexed on user, time)."""
    connection = sqlite3.connect(str(path))
    try:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute(PATIENT_DDL)
        connection.executemany("INSERT INTO patient VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               [(p.id, ("HDF", "NOR", "PDL")[p.region % 3], p.nom, p.prenom,
                                 p.date_naissance.isoformat(), p.telephone or "", p.email, p.nir)
                                for p in platform.patients])
        connection.execute(JOURNAL_DDL)
        rows: list[tuple[object, ...]] = []
        count = 0
        insert = "INSERT INTO journal_acces VALUES (?, ?, ?, ?, ?)"
        for access in accesses if accesses is not None else platform.accesses():
            rows.append((access.ts.strftime(TIME), access.user, access.patient, access.code, access.ip))
            if len(rows) >= batch:
                connection.executemany(insert, rows)
                count += len(rows)
                rows.clear()
        connection.executemany(insert, rows)
        count += len(rows)
        connection.execute("CREATE INDEX journal_acces_user_time ON journal_acces (utilisateur, horodatage)")
        connection.commit()
        return count
    finally:
        connection.close()
