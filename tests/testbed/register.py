"""Generated national register extracts (PS_LibreAcces_Personne_activite), known ground truth.

The layout follows the published extract: ``|``-separated, every line ends with ``|``, 56
columns, one line per activity (so a practitioner can appear on several lines), ADELI lines
(type 0) mixed with RPPS lines (type 8). Names carry accents so that the encoding matters.
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from tourniquet.demo.practitioners import luhn_check_digit

__all__ = ["COLUMNS", "write_extract", "random_rpps"]

COLUMNS = (
    "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Code civilité d'exercice|"
    "Libellé civilité d'exercice|Code civilité|Libellé civilité|Nom d'exercice|Prénom d'exercice|Code profession|"
    "Libellé profession|Code catégorie professionnelle|Libellé catégorie professionnelle|Code type savoir-faire|"
    "Libellé type savoir-faire|Code savoir-faire|Libellé savoir-faire|Code mode exercice|Libellé mode exercice|"
    "Numéro SIRET site|Numéro SIREN site|Numéro FINESS site|Numéro FINESS établissement juridique|"
    "Identifiant technique de la structure|Raison sociale site|Enseigne commerciale site|"
    "Complément destinataire (coord. structure)|Complément point géographique (coord. structure)|"
    "Numéro Voie (coord. structure)|Indice répétition voie (coord. structure)|Code type de voie (coord. structure)|"
    "Libellé type de voie (coord. structure)|Libellé Voie (coord. structure)|Mention distribution (coord. structure)|"
    "Bureau cedex (coord. structure)|Code postal (coord. structure)|Code commune (coord. structure)|"
    "Libellé commune (coord. structure)|Code pays (coord. structure)|Libellé pays (coord. structure)|"
    "Téléphone (coord. structure)|Téléphone 2 (coord. structure)|Télécopie (coord. structure)|"
    "Adresse e-mail (coord. structure)|Code Département (structure)|Libellé Département (structure)|"
    "Ancien identifiant de la structure|Autorité d'enregistrement|Code secteur d'activité|Libellé secteur d'activité|"
    "Code section tableau pharmaciens|Libellé section tableau pharmaciens|Code rôle|Libellé rôle|"
    "Code genre activité|Libellé genre activité"
).split("|")
assert len(COLUMNS) == 56

_PROFESSIONS = [("10", "Médecin"), ("60", "Infirmier"), ("21", "Pharmacien"), ("40", "Chirurgien-Dentiste")]
_NAMES = ["LEFÈVRE", "GÉRARD", "FRANÇOIS", "MÜLLER", "DUPONT", "NGUYEN", "BENOÎT", "CÔTÉ"]
_FIRST = ["HÉLÈNE", "JÉRÔME", "FRANÇOISE", "NOËL", "ANAÏS", "CHLOÉ", "RENÉ", "AGNÈS"]


def random_rpps(rng: random.Random) -> str:
    body = "10" + "".join(str(rng.randrange(10)) for _ in range(8))
    return body + luhn_check_digit(body)


def _line(kind: str, identifier: str, rng: random.Random, index: int) -> str:
    values = [""] * len(COLUMNS)
    profession = _PROFESSIONS[index % len(_PROFESSIONS)]
    values[0], values[1], values[2] = kind, identifier, ("8" if kind == "8" else "0") + identifier
    values[3], values[4] = "DR", "Docteur"
    values[7], values[8] = _NAMES[index % len(_NAMES)], _FIRST[(index // 3) % len(_FIRST)]
    values[9], values[10] = profession
    values[17], values[18] = "S", "Salarié"
    values[24] = f"CENTRE HOSPITALIER N°{rng.randrange(1, 400)}"
    values[37] = "LILLE"
    values[47] = "ARS/CNOM"
    return "|".join(values) + "|"


def write_extract(
    folder: str | Path,
    rpps_numbers: Iterable[str],
    *,
    extra: int = 0,
    adeli: int = 0,
    stamp: datetime | None = None,
    encoding: str = "utf-8",
    zipped: bool = False,
    seed: int = 11,
    max_activities: int = 3,
) -> Path:
    """Write an extract listing ``rpps_numbers`` (1 to ``max_activities`` lines each) plus ``extra``
    random practitioners and ``adeli`` ADELI lines; return the .txt or .zip path."""
    rng = random.Random(seed)
    stamp = stamp or datetime(2026, 11, 28, 2, 15)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"PS_LibreAcces_Personne_activite_{stamp:%Y%m%d%H%M}.txt"
    path = folder / name
    with path.open("w", encoding=encoding, newline="") as handle:
        handle.write("|".join(COLUMNS) + "|\r\n")
        index = 0
        for number in rpps_numbers:
            for _ in range(rng.randint(1, max_activities)):
                handle.write(_line("8", number, rng, index) + "\r\n")
            index += 1
        for _ in range(extra):
            number = random_rpps(rng)
            for _ in range(rng.randint(1, max_activities)):
                handle.write(_line("8", number, rng, index) + "\r\n")
            index += 1
        for _ in range(adeli):
            handle.write(_line("0", f"{rng.randrange(10**8, 10**9)}", rng, index) + "\r\n")
            index += 1
    if not zipped:
        return path
    archive = folder / f"PS_LibreAcces_{stamp:%Y%m%d%H%M}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.write(path, arcname=name)
    path.unlink()
    return archive
