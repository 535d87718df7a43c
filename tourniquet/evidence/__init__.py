"""The evidence bundle of an incident: what it holds, sealing it, verifying it, anchoring it outside.

``<evidence_dir>/<incident>/`` holds the journal (hash-chained, ``journal.jsonl``), the directory
snapshots (``snapshots/``), the frozen scope (``scope/<stamp>/``), the run report and the chain of
manifests (``manifests/NNNN.json``). :mod:`~tourniquet.evidence.bundle` knows the layout and
reads it as hostile input, :mod:`~tourniquet.evidence.seal` writes the next manifest,
:mod:`~tourniquet.evidence.verify` names every problem, :mod:`~tourniquet.evidence.anchors` keeps
each root outside the folder. Putting the root on the ticket needs the ticket connector:
:mod:`tourniquet.engine.sealing` does it.

May import: ``tourniquet.errors``, ``journal``, ``secrets``, ``outbox``.
"""

from __future__ import annotations

from tourniquet.evidence.anchors import ANCHOR_LOG, AnchorEntries, AnchorLog
from tourniquet.evidence.bundle import JOURNAL, MANIFESTS, REPORT, Finding, layout_problem, manifest_name
from tourniquet.evidence.seal import Sealed, SealFailed, seal
from tourniquet.evidence.verify import INTACT, NOT_SEALED, TAMPERED, Verdict, verify

__all__ = [
    "ANCHOR_LOG", "AnchorEntries", "AnchorLog", "JOURNAL", "MANIFESTS", "REPORT", "Finding", "layout_problem",
    "manifest_name", "SealFailed", "Sealed", "seal", "INTACT", "NOT_SEALED", "TAMPERED", "Verdict", "verify",
]
