"""Seal an incident's evidence and anchor it outside the folder; verify it against both anchors.

Two anchors, because each proves something the other cannot:

- the **anchor log** (``<state_dir>/evidence-anchors.jsonl``, see :mod:`tourniquet.evidence.anchors`)
  pins every seal on the Tourniquet host, outside the evidence folder;
- the **ticket**: each seal's root is commented on the incident's ticket, in a system other
  people run, with its own history. It goes through the ticket client, so it waits in the
  outbox while the ticket system is down, like every other ticket write.

Called at the end of every run (:mod:`tourniquet.engine.execute`), after ``undo`` and
``reinstate``, and by ``tourniquet evidence seal``.

The national summary of an incident across regions is sealed in its own folder and anchored in
the first site's anchor log like any bundle; :func:`anchor_national` also anchors each of its seals
in every region — that region's anchor log and the incident's ticket there — so that rewriting or
deleting the summary together with the first site's anchor lines is still seen
(:func:`national_anchors_problems`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structlog

from tourniquet.actions.tickets import anchor_seal, roots_of_seals, roots_on_ticket, seal_on_ticket
from tourniquet.errors import TourniquetError
from tourniquet.evidence import AnchorLog, Finding, Sealed, Verdict, manifest_name, seal, verify
from tourniquet.secrets import mask
from tourniquet.site import Site

__all__ = ["anchor_log", "seal_incident", "verify_incident", "anchor_national", "national_anchors_problems"]

log = structlog.get_logger("tourniquet")


def anchor_log(site: Site, path: str | Path | None = None) -> AnchorLog:
    return AnchorLog(site.config.state_dir, path=path)


def seal_incident(site: Site, incident: str, *, note: str) -> Sealed:
    """Seal the incident's bundle, then put the root on its ticket (and any earlier root not put there yet)."""
    anchors = anchor_log(site)
    folder = site.incident_dir(incident)
    sealed = seal(folder, incident=incident, anchors=anchors, note=note)
    entries = anchors.read(incident)
    manifests = _manifests(folder)
    for sequence in sorted(set(manifests) - set(entries.tickets)):
        manifest = manifests[sequence]
        try:
            result = anchor_seal(site.tickets, incident, manifest)
        except TourniquetError as exc:  # the ticket client could not even be built (configuration)
            result = {"system": site.config.tickets.kind, "ticket": None, "status": "failed", "error": mask(str(exc))}
        anchors.append("ticket", incident, sequence, root=manifest["root"], **result)
        log.info("evidence.anchored", incident=incident, seal=sequence, root=manifest["root"], **result)
    log.info("evidence.sealed", incident=incident, seal=sealed.sequence, root=sealed.root,
             findings=len(sealed.findings))
    return sealed


def _manifests(folder: Path) -> dict[int, dict[str, Any]]:
    """The manifests that parse (verify judges them; here they only feed the ticket anchor)."""
    found: dict[int, dict[str, Any]] = {}
    for path in sorted((folder / "manifests").glob("[0-9][0-9][0-9][0-9].json")):
        try:
            manifest = json.loads(path.read_bytes())
            found[int(manifest["sequence"])] = manifest
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def verify_incident(site: Site, incident: str, *, anchor_path: str | Path | None = None) -> Verdict:
    """The bundle against its manifests, the anchor log and the ticket; every problem named."""
    anchors = anchor_log(site, anchor_path)
    folder = site.incident_dir(incident)
    verdict = verify(folder, incident=incident, anchors=anchors)
    try:
        client = site.tickets
        carried = roots_on_ticket(client, incident)
    except TourniquetError as exc:
        verdict.notes.append(f"ticket not checked: {exc}")
        return verdict
    if carried is not None:
        _foreign_roots(verdict, carried)
    if not verdict.manifests:
        return verdict
    newest = max(verdict.manifests)
    on_ticket = 0
    for sequence, manifest in sorted(verdict.manifests.items()):
        label = manifest_name(sequence)
        anchored = verdict.facts["tickets"].get(sequence)
        if label in verdict.facts.get("forged", []):
            continue  # named as forged already: no seal of Tourniquet's put it on the ticket, none will
        if anchored is None:
            if sequence == newest:
                verdict.unsealed.append(Finding(label, "its root is not on the ticket yet (the seal was interrupted?); "
                                                       "`evidence seal` puts it there"))
            else:
                verdict.findings.append(Finding(label, "its root was never put on the ticket"))
            continue
        state, text = seal_on_ticket(client, incident, manifest, anchored)
        if state == "missing":
            verdict.findings.append(Finding(label, f"ticket: {text}"))
        elif state == "on ticket":
            on_ticket += 1
            if sequence == newest:
                verdict.facts["ticket"] = text.removeprefix("on the ").removeprefix("delivered to the ")
        else:
            verdict.notes.append(f"{label}: ticket: {text}")
    verdict.facts["on_ticket"] = on_ticket
    return verdict


def _foreign_roots(verdict: Verdict, carried: list[tuple[str, int, str]]) -> None:
    """Roots the ticket carries must be roots of the folder's seals: another one means a rewritten folder.

    A seal interrupted before its anchor line cannot have reached the ticket (the ticket comes
    last), so an "interrupted" seal whose root is on the ticket had its anchor line removed.
    """
    roots = {manifest["root"]: sequence for sequence, manifest in verdict.manifests.items()}
    for ticket, sequence, root in carried:
        if root not in roots:
            verdict.findings.append(Finding(f"ticket {ticket}", f"carries root {root} of seal {sequence:04d}, which no "
                                                                "manifest in the folder has: the evidence was "
                                                                "rewritten after it was sealed"))
    incomplete = verdict.facts.get("incomplete")
    if incomplete and any(root == incomplete["root"] for _, _, root in carried):
        label = manifest_name(int(incomplete["sequence"]))
        verdict.unsealed[:] = [f for f in verdict.unsealed if f.file != label]
        verdict.findings.append(Finding(str(verdict.facts["anchor_log"]),
                                        f"has no line for {label}, whose root the ticket carries: lines were "
                                        "removed from the anchor log"))


def anchor_national(site: Site, incident: str, national: str, manifest: dict[str, Any], manifest_sha256: str) -> None:
    """Anchor a seal of the national summary (incident ``national``) in this region too: a line in its
    anchor log and a comment on the incident's ticket here (queued in the outbox when the system is down)."""
    anchors = anchor_log(site)
    sequence, root = int(manifest["sequence"]), str(manifest["root"])
    entries = anchors.read(national)
    if not any(entry.get("root") == root for entry in entries.seals.get(sequence, [])):
        anchors.append("seal", national, sequence, root=root, manifest_sha256=manifest_sha256, copy_of="national")
    if sequence in entries.tickets:
        return
    try:
        result = anchor_seal(site.tickets, incident, manifest)
    except TourniquetError as exc:
        result = {"system": site.config.tickets.kind, "ticket": None, "status": "failed", "error": mask(str(exc))}
    anchors.append("ticket", national, sequence, root=root, **result)
    log.info("national.anchored", region=site.name, seal=sequence, root=root, **result)


def national_anchors_problems(site: Site, incident: str, national: str,
                              manifests: dict[int, dict[str, Any]]) -> list[Finding]:
    """Every national root this region's anchor log and ticket carry must be one of the national folder's
    manifests (``manifests``: those that verified): another one means the summary was rewritten or deleted."""
    problems = []
    roots = {str(manifest.get("root")): sequence for sequence, manifest in manifests.items()}
    anchors = anchor_log(site)
    for sequence, entries in sorted(anchors.read(national).seals.items()):
        for entry in entries:
            if entry.get("root") not in roots:
                problems.append(Finding(f"{site.name}: {anchors}", f"line {entry['line']} pins seal {sequence:04d} of "
                                                                   f"the national summary, root {entry.get('root')}, "
                                                                   "which its folder does not have: the summary was "
                                                                   "rewritten or deleted"))
    try:
        carried = roots_of_seals(site.tickets, incident, national)
    except TourniquetError as exc:
        log.warning("national.ticket_not_checked", region=site.name, error=str(exc))
        carried = None
    for ticket, sequence, root in carried or []:
        if root not in roots:
            problems.append(Finding(f"{site.name}: ticket {ticket}", f"carries root {root} of the national summary's "
                                                                     f"seal {sequence:04d}, which its folder does "
                                                                     "not have: the summary was rewritten or deleted"))
    return problems
