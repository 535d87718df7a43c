"""The messages themselves: short, with the incident id and a link, in French for the DPO and the practitioner.

Every figure comes from :class:`~tourniquet.notices.facts.RunFacts` (the journal's fold) or the
:class:`~tourniquet.clock.Clock`; nothing here counts on its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tourniquet.clock import PARIS, Clock, paris
from tourniquet.connectors.notify import Message, NotifyConfig, Target
from tourniquet.drafts.words import category_words, number, ordered_categories
from tourniquet.notices.facts import CONTAINED, NOT_CONTAINED, AccountOutcome, RunFacts

__all__ = ["paris_fr", "approval_needed", "plan_awaiting", "outcome", "scope_frozen", "practitioner", "reminder", "region_down", "recovered",
           "run_link", "custom"]

LISTED = 10


def run_link(config: NotifyConfig, run: str, fallback: str) -> str:
    """The run's page in the Prefect UI when the site names it and the run is a flow run; else the path."""
    if config.link and run and not run.startswith("local-"):
        return f"{config.link.rstrip('/')}/runs/flow-run/{run}"
    return fallback


def _listed(accounts: list[AccountOutcome], french: bool) -> list[str]:
    lines = [f"- {a.account}: {a.outcome}" + (f" ({a.why[:160]})" if a.why else "") for a in accounts[:LISTED]]
    if len(accounts) > LISTED:
        more = len(accounts) - LISTED
        lines.append(f"- … et {more} autre(s) (voir le rapport)" if french else f"- … and {more} more (see the report)")
    return lines


def plan_awaiting(facts: RunFacts, config: NotifyConfig, link: str) -> Message:
    """SOC: a dry run planned changes that wait for a person to approve them."""
    fr = config.soc_language == "fr"
    planned = facts.with_outcome("planned")
    refused = facts.with_outcome("refused", "failed", "waiting")
    if fr:
        subject = f"[Tourniquet] {facts.incident} : plan en attente d'approbation ({len(planned)} compte(s))"
        body = [f"Incident {facts.incident} ({facts.playbook}, site {facts.site}) : {len(planned)} compte(s), "
                f"{facts.planned_changes} changement(s) de comptes prévus ; rien n'a été changé.",
                *( [f"{len(refused)} compte(s) écarté(s) du plan :"] + _listed(refused, True) if refused else []),
                f"Relire et approuver : {link}"]
    else:
        subject = f"[Tourniquet] {facts.incident}: plan awaiting approval ({len(planned)} account(s))"
        body = [f"Incident {facts.incident} ({facts.playbook}, site {facts.site}): {len(planned)} account(s), "
                f"{facts.planned_changes} change(s) to accounts planned; nothing was changed.",
                *([f"{len(refused)} account(s) left out of the plan:"] + _listed(refused, False) if refused else []),
                f"Review and approve: {link}"]
    return Message("soc", "plan", facts.incident, subject, "\n".join(body), personal=bool(refused))


def approval_needed(incident: str, playbook: str, run: str, reason: str, until: datetime, config: NotifyConfig,
                    link: str) -> Message:
    """SOC: a live run is paused until a person approves (no answer in time is a no: nothing changes)."""
    command = f"tourniquet approve {run} --approver NAME" if run and not run.startswith("local-") else ""
    if config.soc_language == "fr":
        subject = f"[Tourniquet] {incident} : approbation attendue ({playbook})"
        body = [f"Incident {incident} : le run attend une approbation — {reason}.",
                f"Approuver ou refuser : {link}" + (f" (ou `{command}`)" if command else ""),
                f"Sans réponse avant le {paris_fr(until)}, la réponse est non : rien n'est changé."]
    else:
        subject = f"[Tourniquet] {incident}: approval needed ({playbook})"
        body = [f"Incident {incident}: the run waits for an approval — {reason}.",
                f"Approve or reject: {link}" + (f" (or `{command}`)" if command else ""),
                f"No answer by {paris(until)} is a no: nothing changes."]
    return Message("soc", "approval-needed", incident, subject, "\n".join(body), personal=False)


_VERDICT_FR = {"contained": "confiné", "partially contained": "partiellement confiné", "failed": "échec"}


def outcome(facts: RunFacts, config: NotifyConfig, link: str) -> Message:
    """SOC: contained, partially contained (who was not, and why) or failed."""
    fr = config.soc_language == "fr"
    verdict = facts.verdict
    done = facts.with_outcome(*CONTAINED)
    missing = facts.with_outcome(*NOT_CONTAINED)
    total = len(done) + len(missing)
    headline = _VERDICT_FR.get(verdict, verdict) if fr else verdict
    if fr:
        subject = (f"[Tourniquet] {facts.incident} : {headline} ({len(done)}/{total} compte(s))" if total
                   else f"[Tourniquet] {facts.incident} : {headline}, aucun compte confiné")
        body = [f"Incident {facts.incident} ({facts.playbook}, site {facts.site}) : {len(done)} compte(s) confiné(s) "
                f"sur {total}."]
        if missing:
            body += ["Non confinés :"] + _listed(missing, True)
        if facts.error and verdict != "contained":
            body.append(f"Erreur : {facts.error[:300]}")
        body.append(f"Rapport et preuves : {link}")
    else:
        subject = (f"[Tourniquet] {facts.incident}: {headline} ({len(done)}/{total} account(s))" if total
                   else f"[Tourniquet] {facts.incident}: {headline}, no account contained")
        body = [f"Incident {facts.incident} ({facts.playbook}, site {facts.site}): {len(done)} of {total} account(s) "
                f"contained."]
        if missing:
            body += ["Not contained:"] + _listed(missing, False)
        if facts.error and verdict != "contained":
            body.append(f"Error: {facts.error[:300]}")
        body.append(f"Report and evidence: {link}")
    kind = verdict.replace(" ", "-")
    return Message("soc", kind, facts.incident, subject, "\n".join(body))


def _categories(scope: dict[str, Any]) -> list[str]:
    people = scope.get("categories") or {}
    records = scope.get("records_by_category") or {}
    return [f"- {category_words(name)} : {_n(people.get(name, 0))} personne(s)"
            + (f", {_n(records[name])} enregistrement(s)" if name in records else "")
            for name in ordered_categories(set(people) | set(records))]


def _n(value: int) -> str:
    """``12 345``, with a plain space: mail and chat clients do not all keep a narrow no-break space."""
    return number(value).replace("\u202f", " ")


def paris_fr(moment: datetime) -> str:
    """``09/12/2026 à 08:03 (heure de Paris)``."""
    return moment.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M") + " (heure de Paris)"


def scope_frozen(incident: str, scope: dict[str, Any], clock: Clock, config: NotifyConfig, *, site: str, link: str,
                 attachments: list[str]) -> Message:
    """DPO (French): the frozen scope's figures, the drafts, the Art. 33 deadline, what to record once filed."""
    deadline = clock.deadline
    when = (f"{paris_fr(deadline)}, 72 h après la prise de connaissance du {paris_fr(clock.awareness or deadline)}"
            if deadline else "non calculable : heure de prise de connaissance non enregistrée")
    establishment = config.establishment or site
    body = [f"Incident {incident} ({establishment}) : le périmètre des données consultées est figé.",
            f"Personnes concernées : {_n(int(scope.get('people') or 0))} ; enregistrements consultés : "
            f"{_n(int(scope.get('records') or 0))}.",
            *(["Par catégorie :"] + _categories(scope) if _categories(scope) else []),
            f"Échéance de notification à la CNIL (RGPD art. 33) : {when}.",
            "Brouillons joints : notification CNIL (art. 33) et déclaration ARS / CERT Santé (sans délai).",
            "Une fois les déclarations déposées, les enregistrer :",
            f"  tourniquet incidents notified {incident} --cnil RÉFÉRENCE --cert-sante RÉFÉRENCE --by VOTRE-NOM",
            f"Dossier de l'incident : {link}"]
    return Message("dpo", "scope-frozen", incident, f"[Tourniquet] {incident} : périmètre figé — notification CNIL "
                   f"avant le {paris_fr(deadline) if deadline else '?'}", "\n".join(body), attachments=tuple(attachments))


def practitioner(incident: str, account: str, *, name: str, call: str, target: Target, recipient: str,
                 establishment: str) -> Message:
    """The practitioner, through their referent: contained because someone else used it; what to do; whom to call."""
    who = f"{account} de {name}" if name and name != account else account
    body = ["Bonjour,",
            f"Le compte {who} ({establishment}) a été bloqué par mesure de sécurité : il a été utilisé par "
            f"quelqu'un d'autre que son titulaire (incident {incident}).",
            "Merci de prévenir le praticien de vive voix ou par téléphone — pas par la messagerie de ce compte, "
            "qui a pu être lue par l'auteur.",
            "Ce qu'il doit faire : ne pas réutiliser l'ancien mot de passe (ni ailleurs) ; pour retrouver l'accès, "
            "appeler" + (f" {call}" if call else " le support") + " : un mot de passe à usage unique lui sera remis "
            "après vérification de son identité.",
            f"Référence à rappeler : {incident}."]
    return Message("practitioner", "account-contained", incident, f"[Tourniquet] Compte {account} bloqué par sécurité "
                   f"— incident {incident}", "\n".join(body), recipient=recipient, targets=(target,))


def reminder(clock: Clock, key: str, role: str, config: NotifyConfig, now: datetime, link: str) -> Message:
    """DPO (French) and SOC: the CNIL filing is due soon, or late."""
    deadline = clock.deadline
    assert deadline is not None
    fr = role == "dpo" or config.soc_language == "fr"
    hours = int((deadline - now).total_seconds() // 3600)
    record = f"tourniquet incidents notified {clock.incident} --cnil REF --cert-sante REF --by NOM"
    if key == "late":
        late = int((now - deadline).total_seconds() // 3600)
        subject = (f"[Tourniquet] {clock.incident} : notification CNIL EN RETARD ({late} h)" if fr
                   else f"[Tourniquet] {clock.incident}: CNIL notification LATE ({late} h)")
        body = ([f"L'échéance de l'art. 33 était le {paris_fr(deadline)} ; aucune notification CNIL n'est enregistrée.",
                 "Une notification tardive doit indiquer les motifs du retard.", f"Une fois déposée : {record}"] if fr
                else [f"The Art. 33 deadline was {paris(deadline)}; no CNIL filing is recorded.",
                      "A late notification must give the reasons for the delay.", f"Once filed: {record}"])
    else:
        subject = (f"[Tourniquet] {clock.incident} : notification CNIL dans {hours} h" if fr
                   else f"[Tourniquet] {clock.incident}: CNIL notification due in {hours} h")
        body = ([f"Échéance art. 33 : {paris_fr(deadline)} ; aucune notification CNIL enregistrée.",
                 f"Une fois déposée : {record}"] if fr
                else [f"Art. 33 deadline: {paris(deadline)}; no CNIL filing recorded.", f"Once filed: {record}"])
    body.append(f"Incident : {link}" if fr else f"Incident: {link}")
    return Message(role, f"reminder-{key}", clock.incident, subject, "\n".join(body), personal=False, once=key)


def region_down(incident: str, region: str, why: str, config: NotifyConfig, link: str) -> Message:
    """SOC: one region of an incident could not be reached or failed."""
    fr = config.soc_language == "fr"
    subject = (f"[Tourniquet] {incident} : région {region} injoignable" if fr
               else f"[Tourniquet] {incident}: region {region} down")
    body = (f"La partie {region} de l'incident {incident} n'a pas pu être faite : {why[:300]}\n{link}" if fr
            else f"The {region} part of incident {incident} could not be done: {why[:300]}\n{link}")
    return Message("soc", "region-down", incident, subject, body, personal=False)


def recovered(incident: str, accounts: list[str], failed: list[str], config: NotifyConfig, link: str) -> Message:
    """SOC: accounts given back to their owners."""
    fr = config.soc_language == "fr"
    subject = (f"[Tourniquet] {incident} : {len(accounts)} compte(s) rendu(s)" if fr
               else f"[Tourniquet] {incident}: {len(accounts)} account(s) recovered")
    lines = [f"- {a}" for a in accounts[:LISTED]] + ([("Échec : " if fr else "Failed: ") + ", ".join(failed[:LISTED])]
                                                     if failed else [])
    return Message("soc", "recovered", incident, subject, "\n".join(lines + [link]))


def custom(role: str, incident: str, subject: str, text: str) -> Message:
    """A playbook's own words (``notify.send`` with ``text``)."""
    return Message(role, "custom", incident, subject or f"[Tourniquet] {incident}", text)
