"""The national summary of an incident across regions, sealed over the regional evidence bundles.

Each region is its own data controller, with its own bundle, Art. 33 draft and figures. The national
level needs one figure the regions cannot give: how many people in total, each counted once — a
patient treated in two regions is in both regions' scopes. The summary reads each region's *sealed*
scope (``scope.json`` and ``subjects.csv`` of its latest scope folder, whose SHA-256 must equal the
ones its latest manifest lists) and counts people:

- **once across regions** when the subject tables share a national identifier (INS / NIR,
  ``audit.subjects.national_id`` per site): compared by the keyed hash each region wrote
  (``national_hash``), never the identifier; the hashes of two regions are comparable only when their
  keys are the same, which a *key check* (the keyed hash of a fixed text, not of anyone's identifier)
  shows without revealing the key;
- otherwise once per region where seen: the total is then an **upper bound**, and says so.

It lives in its own small evidence folder, ``<evidence_dir of the first site, or --national-dir>/
<incident>-national/``: a hash-chained journal (the resolution across sites, each region's part, the
figures, and for each region the manifest it was computed from: name, SHA-256 and root), ``report.md``
and the chain of manifests, sealed and anchored in the first site's anchor log like any bundle. What
it proves: these figures were computed from exactly these sealed regional bundles, and neither has
changed since (:func:`verify_national` checks both sides).

May import: ``evidence``, ``journal``, ``secrets``, ``storage`` and the small shared modules. Imported by
``engine.regions*`` and ``cli.regions``.
"""

from tourniquet.national.folder import (
    SUFFIX,
    Earlier,
    earlier_runs,
    folder_for,
    latest_summary,
    national_incident,
    newest_manifest,
    parts_recorded,
    record_undo,
    verify_national,
    write_and_seal,
)
from tourniquet.national.people import PeopleCounter
from tourniquet.national.reading import KEY_CHECK_TEXT, NO_ACCOUNT, RegionFigures, RegionSource, key_check
from tourniquet.national.summary import NationalSummary, render_markdown, summarise

__all__ = ["NationalSummary", "RegionFigures", "RegionSource", "Earlier", "national_incident", "folder_for",
           "earlier_runs", "summarise", "PeopleCounter", "render_markdown", "write_and_seal", "verify_national",
           "key_check", "NO_ACCOUNT", "record_undo", "parts_recorded", "newest_manifest", "latest_summary", "SUFFIX", "KEY_CHECK_TEXT"]
