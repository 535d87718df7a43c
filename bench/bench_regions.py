"""Benchmark: the national summary over three sealed regional bundles, against a bare set union of the hashes.

    nice .venv/bin/python bench/bench_regions.py                       # 100,000 and 1,000,000 people per region
    nice .venv/bin/python bench/bench_regions.py --people 300000

Three regions' evidence bundles are written as a run writes them (journal with its ``scope`` record,
``scope.json``, ``subjects.csv`` with each person's keyed NIR hash, sealed with the real ``seal``): a fifth
of each region's people are also people of the previous region, three in ten have no NIR in their record.
Each measurement runs in a fresh process so its peak RSS (VmHWM) is its own:

- baseline: what a DBA would do with the three files — read each ``subjects.csv`` with the csv module and
  put the non-empty hashes in one set (plus a count of the rows without one): no seal checked, no
  categories, no per-region figures;
- summary: :func:`tourniquet.national.summarise` — each region's latest manifest, the scope files hashed as
  they are read and compared with the seal, categories per person across regions, the bounds;
- national: the summary, then its journal, report and seal (:func:`tourniquet.national.write_and_seal`).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REGIONS = ("hdf", "nor", "pdl")
INCIDENT = "inc-bench-national"
KEY = b"bench national-id key"
CATEGORIES = ("identity", "contact", "social_security_number")


def site(folder: Path, name: str) -> Any:
    from tourniquet.config import SiteConfig

    key_file = folder / "national-key"
    if not key_file.exists():
        key_file.write_bytes(KEY + b"\n")
    return SiteConfig.model_validate({
        "site": name, "state_dir": str(folder / name / "state"), "evidence_dir": str(folder / name / "evidence"),
        "directory": {"url": "ldap://127.0.0.1:1", "bind_dn": "cn=admin", "bind_password": {"env": "UNUSED"},
                      "base_dn": "ou=people,dc=example", "allow_plaintext": True},
        "audit": {"kind": "sqlite", "path": str(folder / "log.sqlite"), "table": "journal_acces",
                  "action_fields": {"VIEW": ["nom", "nir"]},
                  "subjects": {"table": "patient", "key": "id", "fields": {"nom": "nom", "nir": "nir"},
                               "national_id": "nir"},
                  "national_id_key": {"file": str(key_file)}}})


def generate(folder: Path, people: int) -> None:
    """Three sealed regional bundles, ``people`` each, a fifth shared with the previous region."""
    from tourniquet.evidence import AnchorLog, seal
    from tourniquet.journal import Journal

    rng = random.Random(16)
    shared = people // 5
    persons = [list(range(r * people, (r + 1) * people)) for r in range(len(REGIONS))]
    for r in range(len(REGIONS)):  # the first fifth of each region: people of the previous region
        persons[r][:shared] = persons[r - 1][-shared:]
    for r, name in enumerate(REGIONS):
        config = site(folder, name)
        bundle = config.evidence_dir / INCIDENT
        scope = bundle / "scope" / "20261201T120000Z"
        scope.mkdir(parents=True)
        by_category: dict[str, int] = {}
        with (scope / "subjects.csv").open("w", encoding="utf-8") as handle:
            handle.write("subject,categories,fields,accounts,records,first,last,anomalous_only,found,national_hash\n")
            for local, person in enumerate(persons[r]):
                categories = [c for c in CATEGORIES if c == "identity" or rng.random() < 0.5]
                for category in categories:
                    by_category[category] = by_category.get(category, 0) + 1
                has_nir = person % 10 >= 3 or person % people >= people - shared  # people of two regions do
                digest = hmac.new(KEY, f"1{person:014d}".encode(), hashlib.sha256).hexdigest() if has_nir else ""
                handle.write(f"{local},{';'.join(categories)},nom;prenom,ps{local % 97},3,2026-11-01T10:00:00+00:00,"
                             f"2026-11-30T10:00:00+00:00,1,1,{digest}\n")
        (scope / "scope.json").write_text(json.dumps({"total": {"events": 3 * people, "subjects": people,
                                                                "subjects_by_category": by_category}}))
        Journal(bundle / "journal.jsonl", incident=INCIDENT, run="bench").write("scope", step="scope",
                                                                                folder=str(scope))
        seal(bundle, incident=INCIDENT, anchors=AnchorLog(config.state_dir))


def measure(kind: str, folder: Path) -> dict[str, float]:
    started = time.perf_counter()
    found: dict[str, float] = {}
    if kind == "baseline":
        import csv

        hashes: set[str] = set()
        without = 0
        for name in REGIONS:
            (path,) = (folder / name / "evidence" / INCIDENT / "scope").glob("*/subjects.csv")
            with path.open(encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle):
                    if row["national_hash"]:
                        hashes.add(row["national_hash"])
                    else:
                        without += 1
        found = {"people": len(hashes) + without}
    else:
        from tourniquet import national

        sources = [national.RegionSource(name=n, config=site(folder, n), status="completed") for n in REGIONS]
        summary = national.summarise(INCIDENT, sources)
        found = {"people": summary.people, "in_several": summary.in_several_regions}
        if kind == "national":
            target = folder / "national-out"
            shutil.rmtree(target, ignore_errors=True)
            national.write_and_seal(national.folder_for(target, INCIDENT), INCIDENT, summary, resolution={},
                                    parts=[], status="completed", problems=[], anchors_dir=target / "state")
    found["seconds"] = time.perf_counter() - started
    found["peak_rss_mb"] = peak_rss_mb()
    return found


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[100_000, 1_000_000], help="people per region")
    parser.add_argument("--data", default=str(REPO / "var" / "bench"))
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]))))
        return
    idle = json.loads(subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'bench'); "
                                      "import tourniquet.national, bench_regions; print(bench_regions.peak_rss_mb())"],
                                     capture_output=True, text=True, check=True, cwd=REPO).stdout)
    for people in args.people:
        folder = Path(args.data) / f"regions-{people}"
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            started = time.perf_counter()
            generate(folder, people)
            (folder / "done").touch()
            print(f"generated 3 sealed regional bundles of {people:,} people in {time.perf_counter() - started:.0f} s")
        results = {}
        for kind in ("baseline", "summary", "national"):
            output = subprocess.run([sys.executable, __file__, "--measure", kind, str(folder)],
                                    capture_output=True, text=True, check=True, cwd=REPO).stdout
            results[kind] = json.loads(output.strip().splitlines()[-1])
        base = results["baseline"]["seconds"]
        print(f"\n3 regions x {people:,} people (a fifth shared with the previous region, 3 in 10 without NIR); "
              f"idle interpreter with the summary imported: {idle:.0f} MB")
        for kind, result in results.items():
            print(f"  {kind:9} {result['seconds']:7.2f} s  ({result['seconds'] / base:5.1f}x baseline)  "
                  f"peak RSS {result['peak_rss_mb']:6.0f} MB  people {int(result['people']):,}"
                  + (f"  in several regions {int(result['in_several']):,}" if "in_several" in result else ""))
        assert results["summary"]["people"] == results["baseline"]["people"], "the same count as the bare union"


if __name__ == "__main__":
    main()
