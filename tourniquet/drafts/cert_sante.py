"""The draft declaration of a health information systems security incident (CSP art. L.1111-8-2).

Health and medico-social structures declare significant IT security incidents without delay to their
ARS and to the national agency (ANS, CERT Santé) through the national reporting portal. The declaration
(annex to the arrêté of 30 October 2017) covers: the structure and the declarant; a description (date
noticed, scope, systems and data concerned, handling status); impacts on data, people, systems and the
structure; causes if known. Written from the same :class:`~tourniquet.drafts.figures.Figures` as the
Art. 33 draft, so both give the same numbers.
"""

from __future__ import annotations

from tourniquet.drafts.figures import Figures
from tourniquet.drafts.words import category_words, local, number, operation_words, ordered_categories

__all__ = ["render_cert_sante"]


def render_cert_sante(f: Figures) -> str:
    scope, total, tz = f.scope, f.scope.total, f.tz
    addresses = sum(s.addresses for s in f.addresses.values())
    networks = sorted({n for s in f.addresses.values() for n, _ in s.top_networks})
    lines = [
        f"# Déclaration d'incident de sécurité des systèmes d'information de santé — projet — incident `{f.incident}`",
        "",
        f"> PROJET préparé par Tourniquet le {local(f.generated, tz)}, à relire et compléter avant envoi. "
        "Article L.1111-8-2 du code de la santé publique (décret n° 2016-1214 modifié par le décret n° 2022-715) : "
        "à déclarer sans délai sur le portail de signalement des événements sanitaires (professionnel de santé → "
        "incident de sécurité des systèmes d'information), destinataires l'ARS et l'ANS (CERT Santé). Mêmes "
        f"chiffres que la notification CNIL (`{f.files.get('notification', '—')}`).",
        "",
        "## 1. Structure et déclarant",
        "",
        "- Structure : **[raison sociale — n° FINESS — adresse]**",
        "- Déclarant : **[nom — fonction — téléphone — e-mail]**",
        "- Responsable de la sécurité des systèmes d'information : **[nom — téléphone — e-mail]**",
        "",
        "## 2. Description de l'incident",
        "",
        f"- **Date de constatation** : {local(f.noticed, tz)}",
        f"- **Début estimé** : {local(f.began, tz)} (premier accès ne correspondant pas à l'historique des comptes)",
        "- **Nature** : usurpation d'identité de professionnels de santé — comptes de la plateforme utilisés par un "
        "tiers pour consulter des données de patients.",
        f"- **Périmètre** : {len(f.accounts)} compte(s) : {', '.join(f.label(a.account) for a in f.accounts)} ; "
        f"plateforme `{f.site}`.",
        "- **Systèmes concernés** : " + ("; ".join(f.systems) if f.systems else "[à compléter]") + ".",
        f"- **Données concernées** : données d'identification de {number(total.subjects)} patients "
        f"({number(total.events)} consultations) :",
    ]
    lines += [f"  - {category_words(c)} : {number(total.subjects_by_category[c])} personnes"
              for c in ordered_categories(total.subjects_by_category)]
    lines += [
        f"- **État de traitement** : incident contenu — accès bloqués le {local(f.contained, tz)} ; "
        "investigation en cours.",
    ]
    lines += [f"  - {local(m.first, tz, with_zone=False)} : {operation_words(m.operation)} ({number(m.count)})"
              for m in f.measures]
    if scope.window.warnings:
        lines.append("  - Attention : des accès inhabituels ont commencé avant la période analysée ; chiffres à "
                     "compléter.")
    lines += [
        "",
        "## 3. Impacts",
        "",
        f"- **Sur les données** : atteinte à la confidentialité ({number(total.subjects)} personnes, "
        f"{number(total.events)} consultations) ; pas d'atteinte à l'intégrité ni à la disponibilité constatée "
        "[à confirmer].",
        f"- **Sur les personnes** : risque d'hameçonnage et d'usurpation d'identité ; {number(total.subjects)} "
        "personnes à informer"
        + (f", dont {number(scope.no_contact)} sans moyen de contact connu" if scope.no_contact is not None else "")
        + ".",
        f"- **Sur les systèmes** : {len(f.accounts)} compte(s) bloqué(s) ; pas d'indisponibilité de la plateforme "
        "[à confirmer].",
        "- **Sur la structure** : **[image, charge de traitement, coûts, relations avec les établissements]**",
        "",
        "## 4. Causes (si connues)",
        "",
        f"- Identifiants de {len(f.accounts)} compte(s) utilisés par un tiers : **[origine à confirmer : "
        "hameçonnage des professionnels, réutilisation de mots de passe, poste compromis]**.",
        f"- Accès depuis {number(addresses)} adresse(s) source"
        + (f" (réseaux principaux : {', '.join(networks[:5])})" if networks else "") + ".",
        "",
        "## 5. Suites",
        "",
        "- Notification à la CNIL (RGPD art. 33) préparée ; information des personnes (art. 34).",
        "- Nouveaux identifiants remis en personne aux titulaires ; surveillance des adresses source.",
    ]
    return "\n".join(lines) + "\n"
