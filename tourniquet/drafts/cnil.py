"""The GDPR Art. 33 notification draft, in French, in the order of the CNIL's online form.

Nature of the breach; categories and approximate numbers of people and of records; likely
consequences; measures taken (with their times, from the journal) or planned; information of the
people (Art. 34); contact point. A few pages whatever the volume: per account one line, source
addresses summarised (the full lists are in the annex CSV). What only a person can say is left as a
visible ``[placeholder]``; the split between accesses consistent with the owners' history and the
others is for the investigation, in a last section marked as not for the form.
"""

from __future__ import annotations

from datetime import timedelta

from tourniquet.drafts.figures import Figures
from tourniquet.drafts.words import (
    CONSEQUENCES,
    category_words,
    local,
    local_day,
    number,
    operation_words,
    ordered_categories,
)
from tourniquet.scope import SSN

__all__ = ["render_cnil"]


def _cell(text: str) -> str:
    """Text from the log or the site (an address, an account) inside a markdown table: no table break, no HTML."""
    return text.replace("|", "/").replace("\n", " ").replace("\r", " ").replace("<", "&lt;").replace("`", "'")


def render_cnil(f: Figures) -> str:
    scope, total, tz = f.scope, f.scope.total, f.tz
    deadline = f.noticed + timedelta(hours=72) if f.noticed else None
    lines = [
        f"# Notification de violation de données personnelles (RGPD, art. 33) — projet — incident `{f.incident}`",
        "",
        f"> PROJET préparé par Tourniquet le {local(f.generated, tz)} pour relecture par le délégué à la protection "
        "des données. Les chiffres sont figés depuis le journal d'accès de la plateforme au moment du confinement ; "
        "les passages entre crochets sont à compléter. Les sections suivent l'ordre du formulaire en ligne de la CNIL.",
        "",
        "**Type de notification** : initiale ; une notification complémentaire suivra si l'enquête apporte des "
        "éléments nouveaux.",
        f"**Prise de connaissance** : {local(f.noticed, tz)} ; notification due avant le {local(deadline, tz)} "
        "(72 heures). [Si ce délai est dépassé : motifs du retard.]",
        "",
    ]
    if scope.window.warnings:
        lines += ["> **Attention, fenêtre d'analyse** : des accès qui ne correspondent pas à l'historique des comptes "
                  "ont commencé avant la fenêtre retenue ; les chiffres ci-dessous peuvent être sous-estimés.", ">"]
        for w in scope.window.warnings:
            lines.append(f"> - {_cell(f.label(w.account))} : premiers accès inhabituels le {local(w.began, tz)}, avant le "
                         f"début de la fenêtre ({local_day(w.window_start, tz)})"
                         + (" ; ils se poursuivent dans la fenêtre" if w.continues else "")
                         + f". Relancer l'analyse à partir du {w.suggested_since:%d/%m/%Y} (ou `since: auto`).")
        lines.append("")
    lines += [
        "## 1. Nature de la violation",
        "",
        "- **Type** : atteinte à la confidentialité de données de patients (consultation non autorisée).",
        f"- **Origine** : acte malveillant externe — {len(f.accounts)} compte(s) de professionnels de santé de la "
        "plateforme utilisé(s) par un tiers (usurpation d'identifiants), au moyen des fonctions normales de l'outil.",
        f"- **Début (estimé)** : {local(f.began, tz)} ; **constatée** : {local(f.noticed, tz)} ; "
        f"**fin** : accès bloqués le {local(f.contained, tz)}.",
        f"- **Période analysée** : du {local(scope.since, tz)} au {local(scope.until, tz)}"
        + (" (début fixé par compte : premier accès inhabituel, avec une marge)." if scope.window.mode == "auto"
           else "."),
        "",
        "| compte | accès | personnes | premier accès | dernier accès | adresses source | réseaux |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in f.accounts:
        summary = f.addresses.get(row.account)
        lines.append(f"| {_cell(f.label(row.account))} | {number(row.events)} | {number(row.subjects)} "
                     f"| {local(row.first, tz, with_zone=False)} | {local(row.last, tz, with_zone=False)} "
                     f"| {number(summary.addresses if summary else 0)} | {number(summary.networks if summary else 0)} |")
    if f.top_addresses:
        count = sum(s.addresses for s in f.addresses.values())
        lines += ["", f"Adresses source : {number(count)} au total (liste complète : `{f.files.get('addresses', '—')}`). "
                  "Les dix plus actives :", "",
                  "| adresse | réseau | compte | accès | vue la première fois | vue la dernière fois |",
                  "|---|---|---|---|---|---|"]
        for stat in f.top_addresses:
            lines.append(f"| {_cell(stat.source_ip)} | {_cell(stat.network or '—')} | {_cell(f.label(stat.account))} "
                         f"| {number(stat.events)} | {local(stat.first, tz, with_zone=False)} "
                         f"| {local(stat.last, tz, with_zone=False)} |")
    lines += [
        "",
        "## 2. Catégories et nombre approximatif de personnes concernées et d'enregistrements",
        "",
        "- **Catégorie de personnes** : patients (usagers) de la plateforme.",
        f"- **Nombre de personnes concernées** : **{number(total.subjects)} patients** (chaque personne comptée une "
        "fois, même vue par plusieurs comptes).",
        f"- **Nombre d'enregistrements** : **{number(total.events)} consultations** de données par ces comptes.",
        "- Une catégorie n'est comptée pour une personne que si son dossier contient cette donnée.",
        "",
        "| catégorie de données | personnes | consultations |",
        "|---|---|---|",
    ]
    for category in ordered_categories(total.subjects_by_category):
        lines.append(f"| {category_words(category)} | {number(total.subjects_by_category[category])} "
                     f"| {number(total.records_by_category.get(category, 0))} |")
    if not total.subjects_by_category:
        lines.append("| aucune trouvée dans le journal d'accès | 0 | 0 |")
    lines += ["", "Aucune donnée médicale n'est affichée par les écrans concernés [à confirmer].", "",
              "## 3. Conséquences probables pour les personnes", ""]
    exposed = set(total.subjects_by_category)
    lines += [f"- {CONSEQUENCES[c]}." for c in ordered_categories(exposed) if c in CONSEQUENCES]
    if exposed - set(CONSEQUENCES):
        lines.append(f"- autres données exposées ({', '.join(sorted(exposed - set(CONSEQUENCES)))}) : à évaluer.")
    lines += [
        "- Le principal risque est l'hameçonnage des patients dont les données ont fuité : ils doivent être "
        "prévenus (art. 34).",
        "",
        "## 4. Mesures prises ou envisagées",
        "",
        "Mesures prises :",
        "",
        "| heure | mesure | comptes |",
        "|---|---|---|",
    ]
    for m in f.measures:
        when = local(m.first, tz, with_zone=False)
        if m.last - m.first >= timedelta(minutes=1):
            when += f" – {m.last.astimezone(tz):%H:%M}"
        lines.append(f"| {when} | {operation_words(m.operation)} | {number(m.count)} |")
    if not f.measures:
        lines.append("| — | aucune modification appliquée par cette exécution (voir le journal) | — |")
    lines += [
        "",
        "Mesures envisagées : informer les personnes (section 5) ; vérifier l'identité des titulaires des comptes et "
        "leur remettre de nouveaux identifiants en personne ; surveiller le journal d'accès pour les adresses source "
        "ci-dessus ; déclarer l'incident à l'ARS et au CERT Santé (art. L.1111-8-2 du code de la santé publique, "
        f"projet joint : `{f.files.get('cert_sante', '—')}`).",
        "",
        "## 5. Information des personnes concernées (art. 34)",
        "",
        f"- {number(total.subjects)} personnes à informer ; liste pour l'envoi (identité, moyens de contact, données "
        f"exposées) : `{f.files.get('people_to_warn', '—')}`.",
    ]
    if scope.no_contact is not None:
        lines.append(f"- {number(scope.no_contact)} d'entre elles sans moyen de contact connu (ni téléphone ni e-mail) : "
                     "[information par courrier ou communication publique].")
    if SSN in exposed:
        lines.append(f"- {number(total.subjects_by_category[SSN])} personnes dont le NIR a été affiché : message "
                     "renforcé (usurpation d'identité).")
    lines += [
        "",
        "## 6. Point de contact",
        "",
        "- Délégué à la protection des données : **[NOM — e-mail — téléphone]**",
        "- Contact sécurité pour cet incident : **[NOM — e-mail — téléphone]**",
        "",
        "## Annexes (dossier de preuves, scellé)",
        "",
    ]
    lines += [f"- {name} : `{path}`" for name, path in f.files.items()]
    lines += _investigation(f)
    return "\n".join(lines) + "\n"


def _investigation(f: Figures) -> list[str]:
    scope, tz = f.scope, f.tz
    lines = [
        "",
        "## Pour l'enquête (interne — ne pas reporter dans le formulaire)",
        "",
        "Accès non cohérents avec l'historique du titulaire : deux signes parmi réseau jamais utilisé, heure "
        "inhabituelle, patient hors de sa patientèle avant l'incident (pour une connexion, un seul). La notification "
        "ci-dessus compte toutes les personnes ; cette répartition aide l'enquête.",
        "",
        "| compte | accès | dont non cohérents | personnes | touchées seulement par ces accès | début détecté "
        "| historique lu (accès) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in [*f.accounts, scope.total]:
        label = "TOTAL" if row.account == "*" else _cell(f.label(row.account))
        lines.append(f"| {label} | {number(row.events)} | {number(row.anomalous.events)} | {number(row.subjects)} "
                     f"| {number(row.anomalous.only_subjects)} | {local(row.attack_start, tz, with_zone=False)} "
                     f"| {number(row.history_events)} |")
    if scope.window.fallback:
        lines += ["", "Aucun accès inhabituel trouvé pour " + ", ".join(f.label(a) for a in scope.window.fallback)
                  + " : fenêtre par défaut."]
    if scope.unknown_actions:
        codes = ", ".join(f"{code} ({number(n)})" for code, n in scope.unknown_actions.items())
        lines += ["", f"Codes d'action absents de `action_fields` (comptés sans données affichées) : {codes}."]
    if scope.not_in_subject_table:
        lines += ["", f"{number(scope.not_in_subject_table)} identifiants de patients sans ligne dans la table des "
                  "personnes (comptés, sans données)."]
    if f.files.get("timeline"):
        lines += ["", f"Chronologie (accès par jour et par compte) : `{f.files['timeline']}`."]
    lines += ["", f"Période : du {local_day(scope.since, tz)} au {local_day(scope.until, tz)}."]
    return lines
