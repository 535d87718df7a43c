"""The Art. 34 export: one line per person to warn, that reaches them, in plain French.

Who (the identity fields the subject table holds), how (each contact field present, and which channels
that leaves), what was exposed (in the words a letter uses), when, and the advice to give. Never the NIR
itself, nor any value that is a NIR: the export goes to a mailing tool. The file is written mode 0600
and sealed with the rest of the bundle.
"""

from __future__ import annotations

from tourniquet.drafts.words import CATEGORY_ORDER, category_words, field_words, local_day, ordered_categories
from tourniquet.nir import is_nir
from tourniquet.scope import AffectedSubject

__all__ = ["PeopleColumns", "ADVICE", "NO_CHANNEL", "safe_cell"]

ADVICE = ("Une personne utilisant le compte d'un professionnel de santé a consulté vos données. Méfiez-vous des "
          "appels, SMS ou e-mails qui s'en servent : votre hôpital et votre caisse d'assurance maladie ne vous "
          "demandent jamais de mot de passe, de coordonnées bancaires ni de code par téléphone, SMS ou e-mail.")
ADVICE_NIR = (" Votre numéro de sécurité sociale a été vu : signalez à votre caisse toute démarche que vous n'avez "
              "pas faite.")
NO_CHANNEL = "aucun moyen de contact connu"
UNKNOWN = "non renseigné (pas de table des personnes)"


def safe_cell(value: object) -> str:
    """A value a spreadsheet will not run: text starting like a formula (``=``, ``+``, ``-``, ``@``, a tab)
    gets a leading apostrophe. Patient records are typed by people; the export is opened by others."""
    text = "" if value is None else str(value).replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


class PeopleColumns:
    """The export's columns for a site: the subject table's identity and contact columns, then the message."""

    def __init__(self, identity: list[tuple[str, str]], contact: list[tuple[str, str]], labels: dict[str, str],
                 tz: object, categories: dict[str, str] | None = None) -> None:
        self.identity = identity          # (field, column header)
        self.contact = contact
        self.labels = labels
        self.tz = tz
        self.categories = categories or {}
        order = [f for f, _ in identity + contact] + list(self.categories)
        self._rank = {f: i for i, f in reversed(list(enumerate(order)))}
        self.names = (["patient"] + [h for _, h in identity] + [h for _, h in contact]
                      + ["joignable_par", "donnees_exposees", "premier_acces", "dernier_acces", "message"])

    def row(self, subject: AffectedSubject) -> dict[str, str]:
        details = {f: v for f, v in subject.details.items() if not is_nir(v)}
        row = {"patient": safe_cell(subject.subject)}
        row.update({header: safe_cell(details.get(field, "")) for field, header in self.identity + self.contact})
        channels = [field_words(f, self.labels) for f, _ in self.contact if details.get(f)]
        if not self.contact:  # the site has no subject table with contact columns: nobody can tell here
            row["joignable_par"] = UNKNOWN
        else:
            row["joignable_par"] = ", ".join(channels) if channels else NO_CHANNEL
        row["donnees_exposees"] = self.exposed(subject)
        row["premier_acces"] = local_day(subject.first, self.tz)  # type: ignore[arg-type]
        row["dernier_acces"] = local_day(subject.last, self.tz)  # type: ignore[arg-type]
        row["message"] = ADVICE + (ADVICE_NIR if "social_security_number" in subject.categories else "")
        return row

    def exposed(self, subject: AffectedSubject) -> str:
        """``nom, prénom, âge, numéro de téléphone`` — or, with no field list, the categories in words."""
        if subject.fields:
            ranked = sorted(subject.fields, key=self._order)
            return ", ".join(dict.fromkeys(field_words(f, self.labels) for f in ranked))
        return "; ".join(category_words(c) for c in ordered_categories(subject.categories))

    def _order(self, field: str) -> tuple[int, int, str]:
        category = self.categories.get(field, "other")
        group = CATEGORY_ORDER.index(category) if category in CATEGORY_ORDER else len(CATEGORY_ORDER)
        return group, self._rank.get(field, len(self._rank)), field
