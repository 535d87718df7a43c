"""A generated directory of practitioners: realistic shape, known ground truth.

Deterministic for a seed, so tests and the demo can name accounts. Each practitioner
has uid, cn/sn/givenName, mail, an 11-digit RPPS number with a Luhn check digit in
``employeeNumber``, a password equal to ``pw-<uid>`` (test data only) and membership of
one establishment group. A break-glass service account lives under ``ou=services``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Practitioner", "Directory", "generate", "luhn_check_digit", "is_valid_rpps", "write_ldif"]

FIRST = ["Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Gaëlle", "Hugo", "Inès", "Jules", "Karima",
         "Louis", "Manon", "Nicolas", "Océane", "Pierre", "Quentin", "Rose", "Samir", "Théo", "Ursule",
         "Victor", "Wassila", "Xavier", "Yasmine", "Zoé"]
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
        "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
        "Morel", "Girard", "Andre", "Lefevre", "Mercier", "Dupont"]
ESTABLISHMENTS = ["chu-lille", "ch-roubaix", "ehpad-les-tilleuls", "ch-rouen", "chu-nantes", "clinique-du-parc"]


def luhn_check_digit(digits: str) -> str:
    """The digit that makes ``digits + d`` pass the Luhn check (RPPS numbers use it)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_valid_rpps(number: str) -> bool:
    return len(number) == 11 and number.isdigit() and luhn_check_digit(number[:10]) == number[10]


@dataclass(frozen=True)
class Practitioner:
    uid: str
    given_name: str
    surname: str
    rpps: str
    mail: str
    establishment: str
    dn: str
    password: str


@dataclass
class Directory:
    suffix: str
    practitioners: list[Practitioner] = field(default_factory=list)
    breakglass_dn: str = ""
    breakglass_uid: str = "breakglass-admin"

    @property
    def people_dn(self) -> str:
        return f"ou=people,{self.suffix}"

    def by_uid(self, uid: str) -> Practitioner:
        return next(p for p in self.practitioners if p.uid == uid)


def _ascii(text: str) -> str:
    table = str.maketrans("éèêëàâäîïôöûüçÉÈÇ", "eeeeaaaiioouucEEC")
    return text.translate(table).lower()


def generate(count: int = 50, suffix: str = "dc=sante,dc=example", seed: int = 7) -> Directory:
    rng = random.Random(seed)
    directory = Directory(suffix=suffix, breakglass_dn=f"uid=breakglass-admin,ou=services,{suffix}")
    used: set[str] = set()
    rpps_used: set[str] = set()
    for index in range(count):
        given, surname = FIRST[index % len(FIRST)], LAST[(index // len(FIRST) + index) % len(LAST)]
        base = f"{_ascii(given)[0]}{_ascii(surname)}"
        uid, n = base, 1
        while uid in used:
            n += 1
            uid = f"{base}{n}"
        used.add(uid)
        while True:
            body = "10" + "".join(str(rng.randrange(10)) for _ in range(8))
            rpps = body + luhn_check_digit(body)
            if rpps not in rpps_used:
                rpps_used.add(rpps)
                break
        directory.practitioners.append(Practitioner(
            uid=uid, given_name=given, surname=surname, rpps=rpps, mail=f"{uid}@sante.example",
            establishment=ESTABLISHMENTS[index % len(ESTABLISHMENTS)],
            dn=f"uid={uid},ou=people,{suffix}", password=f"pw-{uid}",
        ))
    return directory


def _entries(directory: Directory) -> Iterator[str]:
    suffix = directory.suffix
    top = suffix.split(",")[0].split("=")[1]
    yield f"dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: {top}\no: Plateforme regionale e-sante\n"
    for ou in ("people", "groups", "policies", "services"):
        yield f"dn: ou={ou},{suffix}\nobjectClass: organizationalUnit\nou: {ou}\n"
    yield (f"dn: cn=default,ou=policies,{suffix}\nobjectClass: device\nobjectClass: pwdPolicy\ncn: default\n"
           "pwdAttribute: userPassword\npwdLockout: TRUE\npwdMaxFailure: 5\npwdMustChange: TRUE\n"
           "pwdAllowUserChange: TRUE\n")
    yield (f"dn: cn=no-lockout,ou=policies,{suffix}\nobjectClass: device\nobjectClass: pwdPolicy\ncn: no-lockout\n"
           "pwdAttribute: userPassword\npwdLockout: FALSE\n")
    groups: dict[str, list[str]] = {}
    for person in directory.practitioners:
        groups.setdefault(person.establishment, []).append(person.dn)
    group_dn = {name: f"cn={name},ou=groups,{suffix}" for name in groups}
    for person in directory.practitioners:
        yield (f"dn: {person.dn}\nobjectClass: inetOrgPerson\nuid: {person.uid}\ncn: {person.given_name} {person.surname}\n"
               f"givenName: {person.given_name}\nsn: {person.surname}\nmail: {person.mail}\n"
               f"employeeNumber: {person.rpps}\nuserPassword: {person.password}\n"
               f"memberOf: {group_dn[person.establishment]}\n")
    for name, members in groups.items():
        lines = "".join(f"member: {m}\n" for m in members)
        yield f"dn: {group_dn[name]}\nobjectClass: groupOfNames\ncn: {name}\n{lines}"
    yield (f"dn: {directory.breakglass_dn}\nobjectClass: inetOrgPerson\nuid: breakglass-admin\ncn: Break Glass\n"
           f"sn: Glass\nuserPassword: pw-breakglass-admin\n")


def write_ldif(directory: Directory, path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", encoding="utf-8") as handle:
        for entry in _entries(directory):
            handle.write(entry + "\n")
    return path
