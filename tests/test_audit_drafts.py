"""What the DPO and CERT Santé receive stays readable whatever the volume, and never leaks what it must not.

A scope of ten accounts with 250 source addresses each (a scraper rotating through a proxy pool) must give
an Art. 33 draft of a few pages: addresses summarised (count, networks, first/last seen, the ten busiest),
the full list in the annex. Hostile records (a NIR typed in the name field, a formula in a phone number,
markdown in an address) come out harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from tourniquet.demo.access_log import make_nir
from tourniquet.drafts import Figures, PeopleColumns, render_cert_sante, render_cnil
from tourniquet.drafts.people import NO_CHANNEL, safe_cell
from tourniquet.drafts.words import number, zone
from tourniquet.nir import is_nir
from tourniquet.scope import AffectedSubject, Group, Person, Scope, ScopeBuilder

T0 = datetime(2025, 8, 1, tzinfo=timezone.utc)
UNTIL = T0 + timedelta(days=40)
ACCOUNTS = [f"ps{n:02d}" for n in range(10)]


def big_scope(addresses: int = 250) -> Scope:
    builder = ScopeBuilder({a: (T0, UNTIL) for a in ACCOUNTS}, sorted_by_subject=False, on_subject=lambda s: None)
    subject = 0
    for n, account in enumerate(ACCOUNTS):
        for k in range(addresses):
            ip = f"185.{220 + k % 3}.{n}.{k % 250 + 1}"
            for _ in range(4):
                moment = T0 + timedelta(days=k % 30, minutes=subject % 600)
                builder.add(Group(account=account, subject=str(subject), source_ip=ip,
                                  categories=frozenset({"identity", "contact"}), count=3, first=moment, last=moment,
                                  fields=frozenset({"nom", "prenom", "telephone"}), anomalous=True,
                                  network=f"185.{220 + k % 3}.{n}.0/24",
                                  person=Person(found=True, details=(("nom", "X"),), channels=())))
                subject += 1
    return builder.finish()


def figures(scope: Scope) -> Figures:
    journal = [{"type": "run", "status": "started", "time": UNTIL.isoformat()}]
    journal += [{"type": "change", "outcome": "applied", "operation": op, "system": "directory", "account": a,
                 "time": (UNTIL + timedelta(seconds=i)).isoformat()}
                for i, a in enumerate(ACCOUNTS) for op in ("lock", "force_password_reset")]
    return Figures.build(incident="inc-big", site="grades-hdf", scope=scope, labels={a: a for a in ACCOUNTS},
                         journal=journal, files={"addresses": "scope/x/adresses-source.csv"}, generated=UNTIL)


def test_the_draft_for_ten_accounts_and_2500_addresses_stays_a_few_pages() -> None:
    scope = big_scope()
    assert len(scope.addresses) == 2500

    draft = render_cnil(figures(scope))

    assert len(draft.encode("utf-8")) < 20_000
    assert "Adresses source : 2\u202f500 au total (liste complète : `scope/x/adresses-source.csv`)" in draft
    assert "Les dix plus actives" in draft
    top = draft.split("Les dix plus actives")[1].split("## 2.")[0]
    assert top.count("\n| 185.") == 10, "ten rows, each naming its address and network"
    assert "| ps03 | 3\u202f000 | 1\u202f000 |" in draft, "one line per account: accesses, people"
    assert "compte bloqué dans l'annuaire | 10 |" in draft, "measures grouped, with their times"
    cert = render_cert_sante(figures(scope))
    assert len(cert.encode("utf-8")) < 10_000 and "**Date de constatation**" in cert
    assert "données d'identification de 10\u202f000 patients" in cert


def test_both_drafts_give_the_same_frozen_figures() -> None:
    f = figures(big_scope(addresses=20))
    people = number(f.scope.total.subjects)

    assert f"**{people} patients**" in render_cnil(f)
    assert f"données d'identification de {people} patients" in render_cert_sante(f)


def person(**details: str) -> AffectedSubject:
    return AffectedSubject.model_construct(subject="P1", categories=["identity", "contact"], accounts=["a"], records=1,
                                           first=T0, last=T0, fields=["nom", "prenom", "telephone"],
                                           anomalous_only=False, details=details, channels=[], national_hash=None,
                                           found=True)


COLUMNS = PeopleColumns([("nom", "nom"), ("prenom", "prenom")], [("telephone", "telephone"), ("email", "email")],
                        {}, zone("Europe/Paris"), {"nom": "identity", "prenom": "identity", "telephone": "contact",
                                                   "email": "contact"})


def test_a_nir_typed_in_any_field_never_reaches_the_export() -> None:
    row = COLUMNS.row(person(nom=make_nir("1", 85, 5, "75"), prenom="Jeanne", telephone="0612345678"))

    assert row["nom"] == "" and row["prenom"] == "Jeanne"
    assert not any(is_nir(v) for v in row.values())
    assert row["joignable_par"] == "numéro de téléphone"
    assert COLUMNS.row(person(nom="X"))["joignable_par"] == NO_CHANNEL


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_hostile_values_cannot_become_spreadsheet_formulas_or_break_lines(value: str) -> None:
    row = COLUMNS.row(person(nom=value, telephone=value))

    for cell in (row["nom"], row["telephone"], safe_cell(value)):
        assert cell[:1] not in ("=", "+", "-", "@", "\t")
        assert "\n" not in cell and "\r" not in cell
