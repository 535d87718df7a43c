"""A generated platform for the hygiene checks: directory, register extract and access log,
with planted cases whose ground truth is known.

Normal accounts follow realistic profiles (``NORMAL_PROFILES``): day workers (a panel of patients
seen again and again, some new ones each day, working hours, two workstations in their hospital's
network, sometimes a new workstation or the VPN gateway), night-shift workers, emergency-department
accounts (many new patients every day, around the clock), people on holiday, new hires — and the
look-alikes of a misuse already under way: a day worker who **moved to nights** some weeks ago (a
change point in off-hours work, same patients, same hospital network), **teleworkers** (a home
network only they use, in working hours), **on-call** doctors (a few nights a month from a mobile
carrier's range that many accounts share, day and night).

Planted accounts each show exactly one sign:

    not_registered  RPPS absent from the register extract       → not_in_register
    no_rpps         no RPPS number in the directory             → not_in_register
    dormant         no event for > days, old entry              → dormant
    unprotected     pwdPolicySubentry → no-lockout / missing    → unprotected
    spike           hundreds of new patients on the last day    → unusual_volume
    night           accesses at 1-4 am in the last week         → off_hours
    foreign_ip      accesses from an unknown network yesterday  → new_source_ip
    slow            30 new patients a day for 25 days           → slow_scraping

and ``ongoing`` accounts (``ATTACKS``): compromised ``days_ago`` days before the run — 10, 30, 45 or
60 — on top of their owner's normal work (a day worker, a night-shift worker, an emergency
department), the intruder comes at night from a network of their own (two accounts share one
intruder) and takes 15 to 60 new patients a night. Any misuse check may find them; each one's true
start is in :attr:`Scenario.attacks`. For benchmarks, ``idle`` accounts (in the directory, never in
the log: dormant) are streamed into the LDIF and the register without being held in memory, and
``activity`` scales the day and night workers' volume (a 10,000-account platform at 0.4 makes
~10 M events over 90 days). Look-alikes that must NOT be reported: a locked dormant account, a new
account that has not logged in yet, an account with a recent ``authTimestamp`` (lastbind) but no event.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from tests.testbed.register import write_extract
from tourniquet.demo.practitioners import Directory, Practitioner, _entries, generate, luhn_check_digit
from tourniquet.demo.slapd import Slapd

__all__ = ["Scenario", "AttackPlan", "Attack", "build_scenario", "write_directory_ldif", "write_access_log",
           "write_register", "HygieneSlapd", "PLANTS", "ATTACKS", "NORMAL_PROFILES", "MISUSE_CHECKS"]

#: planted role → (count, the check kind that must find it)
PLANTS: dict[str, tuple[int, str | None]] = {
    "not_registered": (3, "not_in_register"),
    "no_rpps": (1, "not_in_register"),
    "dormant": (3, "dormant"),
    "unprotected": (3, "unprotected"),
    "spike": (2, "unusual_volume"),
    "night": (2, "off_hours"),
    "foreign_ip": (2, "new_source_ip"),
    "slow": (2, "slow_scraping"),
    # look-alikes: never reported
    "dormant_locked": (1, None),
    "new_account": (1, None),
    "recent_login": (1, None),
}
NORMAL_PROFILES = (("day", 0.72), ("night_shift", 0.10), ("emergency", 0.05), ("holiday", 0.03), ("new_hire", 0.02),
                   ("job_change", 0.02), ("teleworker", 0.04), ("on_call", 0.02))
#: The checks that look for misuse in the access log (an ``ongoing`` account must be found by one).
MISUSE_CHECKS = frozenset({"unusual_volume", "off_hours", "new_source_ip", "slow_scraping", "night_network",
                           "behaviour_change"})
VPN = "172.16.0.10"
#: Mobile carriers' shared ranges (CGNAT): many accounts, day and night.
CARRIERS = tuple(f"100.64.{n}" for n in range(4))


@dataclass(frozen=True)
class AttackPlan:
    """One account compromised ``days_ago`` days before the run, on top of its owner's ``host`` work."""

    host: str                                  # the owner's profile: day, night_shift, emergency
    days_ago: int
    patients: tuple[int, int] = (15, 60)       # new patients a night, drawn per night
    intruder: int | None = None                # accounts with the same number share the intruder's network


ATTACKS: tuple[AttackPlan, ...] = (
    AttackPlan("day", 10), AttackPlan("day", 30), AttackPlan("day", 60),
    AttackPlan("night_shift", 10), AttackPlan("night_shift", 30), AttackPlan("night_shift", 60),
    AttackPlan("emergency", 10, (15, 25)), AttackPlan("emergency", 30), AttackPlan("emergency", 60),
    AttackPlan("day", 45, intruder=0), AttackPlan("night_shift", 30, intruder=0),
)


@dataclass(frozen=True)
class Attack:
    """Ground truth of one ongoing misuse: its first day (UTC date of the intruder's first access)."""

    plan: AttackPlan
    start: date
    network: str


@dataclass
class Account:
    person: Practitioner
    role: str                      # normal profile or planted role
    profile: str                   # how the owner works: a normal profile
    hospital: int
    ips: list[str]
    panel_size: int
    daily_mean: float
    new_share: float
    weekends: bool
    switch_back: int = 0           # job_change: moved to nights this many days before the run
    home: str = ""                 # teleworker: home address; on_call: carrier address

    @property
    def uid(self) -> str:
        return self.person.uid


@dataclass
class Scenario:
    directory: Directory
    accounts: list[Account]
    as_of: datetime
    days: int
    normal: int
    idle: int = 0
    policy_missing_dn: str = ""
    expected: dict[str, set[str]] = field(default_factory=dict)  # check kind → planted uids
    attacks: dict[str, Attack] = field(default_factory=dict)      # uid → ongoing misuse

    def role(self, name: str) -> list[Account]:
        return [a for a in self.accounts if a.role == name]

    @property
    def suffix(self) -> str:
        return self.directory.suffix


def build_scenario(normal: int = 200, *, idle: int = 0, days: int = 100, seed: int = 5,
                   as_of: datetime = datetime(2026, 11, 28, tzinfo=timezone.utc),
                   suffix: str = "dc=sante,dc=example", plants: dict[str, tuple[int, str | None]] | None = None,
                   attacks: Sequence[AttackPlan] = (), activity: float = 1.0) -> Scenario:
    plants = PLANTS if plants is None else plants
    planted = sum(count for count, _ in plants.values())
    directory = generate(normal + planted + len(attacks), suffix, seed=seed)
    rng = random.Random(seed)
    roles: list[str] = [name for name, (count, _) in plants.items() for _ in range(count)]
    roles += ["ongoing"] * len(attacks)
    weights = [w for _, w in NORMAL_PROFILES]
    roles += rng.choices([p for p, _ in NORMAL_PROFILES], weights=weights, k=normal)
    plans = iter(attacks)
    accounts: list[Account] = []
    for index, (person, role) in enumerate(zip(directory.practitioners, roles)):
        plan = next(plans) if role == "ongoing" else None
        profile = plan.host if plan else role if role in dict(NORMAL_PROFILES) else "day"
        hospital = index % 6
        emergency = profile == "emergency"
        scale = 1.0 if emergency else activity
        account = Account(
            person=person, role=role, profile=profile, hospital=hospital,
            ips=[f"10.20.{hospital}.{rng.randrange(2, 250)}" for _ in range(2)],
            panel_size=rng.randrange(60, 200),
            daily_mean=rng.uniform(35, 45) if emergency else rng.uniform(6, 22) * scale,
            new_share=0.6 if emergency else 0.08,
            weekends=emergency or profile == "night_shift" or rng.random() < 0.3,
        )
        if profile == "job_change":
            account.switch_back = rng.randrange(20, min(70, days - 20))
        elif profile == "teleworker":
            account.home = f"{rng.choice(('82', '86', '90', '176'))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(2, 250)}"
        elif profile == "on_call":
            account.home = f"{rng.choice(CARRIERS)}.{rng.randrange(2, 250)}"
        accounts.append(account)
    scenario = Scenario(directory, accounts, as_of, days, normal, idle,
                        policy_missing_dn=f"cn=legacy,ou=policies,{suffix}")
    for name, (_, kind) in plants.items():
        if kind:
            scenario.expected.setdefault(kind, set()).update(a.uid for a in scenario.role(name))
    lone = 0
    for account, plan in zip(scenario.role("ongoing"), attacks):
        if plan.intruder is None:
            lone += 1
            network = f"198.18.{lone}"
        else:
            network = f"198.19.{plan.intruder}"
        scenario.attacks[account.uid] = Attack(plan, (as_of - timedelta(days=plan.days_ago)).date(), network)
    return scenario


# --------------------------------------------------------------------------- directory


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%SZ")


def idle_rpps(index: int) -> str:
    """The RPPS number of the ``index``-th idle account (valid, and apart from the generated ones)."""
    body = f"19{index:08d}"
    return body + luhn_check_digit(body)


def _idle_entries(scenario: Scenario, created: str) -> Iterator[str]:
    people = scenario.directory.people_dn
    for index in range(scenario.idle):
        uid = f"idle{index:07d}"
        yield (f"dn: uid={uid},{people}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Idle {index}\nsn: Idle\n"
               f"mail: {uid}@sante.example\nemployeeNumber: {idle_rpps(index)}\nuserPassword: pw-{uid}\n"
               f"createTimestamp: {created}\n")


def write_directory_ldif(scenario: Scenario, path: str | Path) -> Path:
    """The practitioners' LDIF (as the session fixture builds it) with the planted attributes, then the
    idle accounts, streamed."""
    long_ago = _stamp(scenario.as_of - timedelta(days=400))
    extra: dict[str, list[str]] = {}
    drop: dict[str, str] = {}
    unprotected = scenario.role("unprotected")
    for account in scenario.accounts:
        dn = account.person.dn
        lines = [f"createTimestamp: {long_ago}"]
        if account.role == "unprotected":
            target = (scenario.policy_missing_dn if account is unprotected[-1]
                      else f"cn=no-lockout,ou=policies,{scenario.directory.suffix}")
            lines.append(f"pwdPolicySubentry: {target}")
        elif account.role == "dormant_locked":
            lines.append("pwdAccountLockedTime: 000001010000Z")
        elif account.role == "new_account" or account.role == "new_hire":
            lines = [f"createTimestamp: {_stamp(scenario.as_of - timedelta(days=5))}"]
        elif account.role == "recent_login":
            lines.append(f"authTimestamp: {_stamp(scenario.as_of - timedelta(days=3))}")
        elif account.role == "no_rpps":
            drop[dn] = f"employeeNumber: {account.person.rpps}\n"
        extra[dn] = lines
    path = Path(path)
    with path.open("w", encoding="utf-8", buffering=1 << 20) as handle:
        for entry in _entries(scenario.directory):
            first = entry.split("\n", 1)[0]
            dn = first[4:] if first.startswith("dn: ") else ""
            if dn in drop:
                entry = entry.replace(drop[dn], "")
            if dn in extra:
                entry = entry.rstrip("\n") + "\n" + "".join(f"{line}\n" for line in extra[dn])
            handle.write(entry + "\n")
        for entry in _idle_entries(scenario, long_ago):
            handle.write(entry + "\n")
    return path


class HygieneSlapd(Slapd):
    """The test slapd plus the lastbind overlay, so that ``authTimestamp`` exists (last login)."""

    def config_ldif(self) -> str:
        text = super().config_ldif().replace("olcModuleLoad: memberof\n", "olcModuleLoad: memberof\nolcModuleLoad: lastbind\n")
        return text + """
dn: olcOverlay={2}lastbind,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcLastBindConfig
olcOverlay: {2}lastbind
olcLastBindPrecision: 60
"""


def write_register(scenario: Scenario, folder: str | Path, *, extra: int = 2000, adeli: int = 300,
                   encoding: str = "utf-8", zipped: bool = True) -> Path:
    """The national extract: every practitioner (idle ones too) except the ``not_registered`` ones, plus strangers."""
    missing = {a.uid for a in scenario.role("not_registered")}

    def numbers() -> Iterator[str]:
        yield from (a.person.rpps for a in scenario.accounts if a.uid not in missing)
        yield from (idle_rpps(index) for index in range(scenario.idle))

    return write_extract(folder, numbers(), extra=extra, adeli=adeli, encoding=encoding, zipped=zipped,
                         stamp=(scenario.as_of - timedelta(hours=22)).replace(tzinfo=None))


# --------------------------------------------------------------------------- access log


SCHEMA = """CREATE TABLE IF NOT EXISTS access_log (
    ts TEXT NOT NULL, account TEXT NOT NULL, patient_id TEXT NOT NULL,
    action TEXT NOT NULL, fields TEXT, source_ip TEXT)"""
INDEXES = ("CREATE INDEX IF NOT EXISTS access_log_ts ON access_log (ts)",
           "CREATE INDEX IF NOT EXISTS access_log_account_ts ON access_log (account, ts)")
FIELDS = "last_name,first_name,birth_date"
Row = tuple[str, str, str, str, str, str]


def _events(scenario: Scenario, account: Account, rng: random.Random) -> Iterator[Row]:
    end = scenario.as_of.date()
    role, profile = account.role, account.profile
    if role in ("dormant", "dormant_locked"):
        first_day, last_day = scenario.days, scenario.days - 6      # only long ago
    elif role in ("new_account", "recent_login", "idle"):
        return
    elif role == "new_hire":
        first_day, last_day = 4, 1
    else:
        first_day, last_day = scenario.days, 1
    start = rng.randrange(8, 30)
    holiday = range(start, start + 14) if role == "holiday" else range(0)
    panel = [f"P{rng.randrange(1, 3_000_000):07d}" for _ in range(account.panel_size)]
    attack = scenario.attacks.get(account.uid)
    intruder = [f"{attack.network}.{rng.randrange(2, 250)}" for _ in range(2)] if attack else []
    uid, ips = account.uid, account.ips
    for back in range(first_day, last_day - 1, -1):
        day = end - timedelta(days=back)
        prefix = day.isoformat()
        yield from _planted(scenario, account, back, prefix, panel, rng)
        if attack is not None and back <= attack.plan.days_ago:
            yield from _intrusion(attack, back, day, end, intruder, rng, uid)
        if back in holiday or (day.weekday() >= 5 and not account.weekends):
            if profile == "on_call" and rng.random() < 0.15:
                yield from _on_call(prefix, account, panel, rng)
            continue
        count = max(0, int(rng.gauss(account.daily_mean, account.daily_mean ** 0.5)))
        nights = profile == "night_shift" or (profile == "job_change" and back <= account.switch_back)
        at_home = profile == "teleworker" and day.weekday() in (0, 4) and rng.random() < 0.7
        for _ in range(count):
            if rng.random() < account.new_share:
                patient = f"P{rng.randrange(1, 3_000_000):07d}"
                if profile != "emergency":
                    panel.append(patient)
            else:
                patient = rng.choice(panel)
            ip = ips[0] if rng.random() < 0.6 else ips[1]
            roll = rng.random()
            if at_home:
                ip = account.home
            elif roll < 0.01:
                ip = f"10.20.{account.hospital}.{rng.randrange(2, 250)}"   # another workstation, same network
            elif roll < 0.03:
                ip = VPN
            elif profile == "on_call" and roll < 0.05:
                ip = account.home                                         # the phone, in the daytime
            hour = _local_hour(profile, nights, rng)
            for _ in range(rng.randint(1, 3)):
                yield _row(prefix, hour, rng, uid, patient, ip)
        if profile == "on_call" and rng.random() < 0.08:
            yield from _on_call(prefix, account, panel, rng)


def _local_hour(profile: str, nights: bool, rng: random.Random) -> int:
    if nights:
        return rng.choice([20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6])
    if profile == "emergency":
        return rng.randrange(0, 24) if rng.random() < 0.3 else rng.randrange(7, 20)
    return rng.randrange(7, 20) if rng.random() > 0.02 else rng.choice([20, 21])


def _row(prefix: str, local_hour: int, rng: random.Random, uid: str, patient: str, ip: str,
         action: str = "view") -> Row:
    hour = (local_hour - 1) % 24  # stored in UTC; local time is UTC+1 in the generated winter
    # The audit connector's default time_format (%Y-%m-%d %H:%M:%S, UTC).
    seconds = rng.randrange(3600)
    return (f"{prefix} {hour:02d}:{seconds // 60:02d}:{seconds % 60:02d}", uid, patient, action, FIELDS, ip)


def _on_call(prefix: str, account: Account, panel: list[str], rng: random.Random) -> Iterator[Row]:
    """A call at night: a few patients of the panel, from the phone (a carrier's shared range)."""
    hour = rng.choice([22, 23, 1, 2, 3])
    for _ in range(rng.randint(1, 4)):
        yield _row(prefix, hour, rng, account.uid, rng.choice(panel), account.home)


def _intrusion(attack: Attack, back: int, day: date, end: date, addresses: list[str], rng: random.Random,
               uid: str) -> Iterator[Row]:
    """One night of the intruder: from local 22h (the first night: at 22h sharp) into the early morning."""
    if back != attack.plan.days_ago and rng.random() < 0.15:
        return  # not every night
    low, high = attack.plan.patients
    address = rng.choice(addresses)
    for index in range(rng.randint(low, high)):
        local = 22 if index == 0 else rng.choice([22, 23, 24, 25, 26, 27, 28])  # 24+ is after midnight
        when = day if local < 25 else day + timedelta(days=1)  # stored UTC = local - 1
        if when >= end:
            continue
        patient = f"P{rng.randrange(1, 3_000_000):07d}"
        for _ in range(rng.randint(1, 2)):
            yield _row(when.isoformat(), local % 24, rng, uid, patient, address, "search")


def _planted(scenario: Scenario, account: Account, back: int, prefix: str, panel: list[str],
             rng: random.Random) -> Iterator[Row]:
    role, uid = account.role, account.uid
    if role == "spike" and back == 1:
        for _ in range(rng.randrange(200, 320)):
            yield _row(prefix, rng.randrange(9, 18), rng, uid, f"P{rng.randrange(1, 3_000_000):07d}", account.ips[0], "search")
    elif role == "night" and back in (2, 4, 6):
        for _ in range(20):
            yield _row(prefix, rng.randrange(1, 4), rng, uid, rng.choice(panel), account.ips[0])
    elif role == "foreign_ip" and back == 1:
        for _ in range(20):
            yield _row(prefix, rng.randrange(9, 18), rng, uid, rng.choice(panel), f"203.0.113.{40 + account.hospital}")
    elif role == "slow" and back <= 25:
        for _ in range(30):
            yield _row(prefix, rng.randrange(8, 19), rng, uid, f"P{rng.randrange(1, 3_000_000):07d}", rng.choice(account.ips))


def write_access_log(scenario: Scenario, path: str | Path, *, seed: int = 3, indexes: bool = True) -> int:
    """Write the access log (SQLite, the canonical column names); return the number of events."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute(SCHEMA)
    rng = random.Random(seed)
    total = 0
    batch: list[Row] = []
    for account in scenario.accounts:
        for row in _events(scenario, account, rng):
            batch.append(row)
            if len(batch) >= 50_000:
                connection.executemany("INSERT INTO access_log VALUES (?,?,?,?,?,?)", batch)
                total += len(batch)
                batch = []
    if batch:
        connection.executemany("INSERT INTO access_log VALUES (?,?,?,?,?,?)", batch)
        total += len(batch)
    connection.commit()
    if indexes:
        for statement in INDEXES:
            connection.execute(statement)
        connection.execute("ANALYZE")  # lets SQLite pick the (account, ts) index for per-account aggregates
        connection.commit()
    connection.close()
    return total


def planted_roles() -> dict[str, str | None]:
    return {name: kind for name, (_, kind) in PLANTS.items()}
