"""The words the drafts use: categories, data fields and measures in plain French; dates and numbers.

The letters go to French patients and the forms to French authorities: plain words, no codes. A site
names its own fields (``nom``, ``telephone`` …); well-known names have words here, and
``audit.field_labels`` adds or overrides them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tourniquet.scope import CONTACT, IDENTITY, SSN

__all__ = ["CATEGORY_WORDS", "CATEGORY_ORDER", "FIELD_WORDS", "OPERATION_WORDS", "CONSEQUENCES", "field_words",
           "category_words", "operation_words", "ordered_categories", "zone", "local", "local_day", "number"]

CATEGORY_ORDER = (IDENTITY, CONTACT, SSN)
CATEGORY_WORDS = {
    IDENTITY: "identité (nom, prénom, date de naissance ou âge)",
    CONTACT: "coordonnées (téléphone, adresse e-mail, adresse postale)",
    SSN: "numéro de sécurité sociale (NIR)",
    "other": "autres données (voir la correspondance des champs du journal d'accès)",
}
FIELD_WORDS = {
    "nom": "nom", "last_name": "nom", "nom_naissance": "nom de naissance", "prenom": "prénom",
    "first_name": "prénom", "age": "âge", "date_naissance": "date de naissance", "birth_date": "date de naissance",
    "telephone": "numéro de téléphone", "phone": "numéro de téléphone", "portable": "numéro de téléphone portable",
    "email": "adresse e-mail", "mail": "adresse e-mail", "adresse": "adresse postale", "address": "adresse postale",
    "nir": "numéro de sécurité sociale", "ins": "identifiant national de santé (INS)",
}
OPERATION_WORDS = {
    "lock": "compte bloqué dans l'annuaire",
    "force_password_reset": "nouveau mot de passe exigé à la prochaine connexion",
    "scramble_password": "mot de passe remplacé par une valeur aléatoire",
    "remove_groups": "droits (groupes) retirés",
    "remove_group": "droit (groupe) retiré",
    "end_sessions": "sessions et jetons fermés au fournisseur d'identité",
    "revoke_offline_tokens": "jetons hors ligne révoqués",
    "require_actions": "changement de mot de passe et ré-enrôlement MFA exigés",
    "disable": "compte désactivé au fournisseur d'identité",
    "open_ticket": "ticket d'incident ouvert",
    "comment_ticket": "ticket d'incident complété",
}
CONSEQUENCES = {
    IDENTITY: "hameçonnage ciblé et ingénierie sociale : un appel ou un message qui connaît le nom, l'âge de la "
              "personne et sait qu'elle est suivie sur la plateforme est facilement cru",
    CONTACT: "hameçonnage par e-mail, SMS ou téléphone (faux hôpital, fausse assurance maladie, fausses demandes "
             "de paiement)",
    SSN: "usurpation d'identité et utilisation frauduleuse des droits à l'assurance maladie ; le NIR ne peut pas "
         "être changé",
}


def field_words(field: str, labels: dict[str, str]) -> str:
    return labels.get(field) or FIELD_WORDS.get(field) or field.replace("_", " ")


def category_words(category: str) -> str:
    return CATEGORY_WORDS.get(category, category.replace("_", " "))


def operation_words(operation: str) -> str:
    return OPERATION_WORDS.get(operation, operation.replace("_", " "))


def ordered_categories(categories: Iterable[str]) -> list[str]:
    present = set(categories)
    return [c for c in CATEGORY_ORDER if c in present] + sorted(present - set(CATEGORY_ORDER))


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def _zone_name(tz: tzinfo) -> str:
    return "heure de Paris" if str(tz) == "Europe/Paris" else "UTC" if tz is timezone.utc else str(tz)


def local(moment: datetime | None, tz: tzinfo, *, with_zone: bool = True) -> str:
    """``08/09/2025 à 14:03`` (heure de Paris): how a French form writes a time."""
    if moment is None:
        return "—"
    text = moment.astimezone(tz).strftime("%d/%m/%Y à %H:%M")
    return f"{text} ({_zone_name(tz)})" if with_zone else text


def local_day(moment: datetime | None, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%d/%m/%Y") if moment else "—"


def number(value: int | None) -> str:
    """``12 345``: French digit grouping (a narrow no-break space)."""
    return "—" if value is None else f"{value:,}".replace(",", "\u202f")
