"""The national summary's counting and the checks on sites given together, without servers.

Each region here is a small sealed evidence bundle written the way a run writes it (a journal with its
``scope`` record, ``scope.json``, ``subjects.csv`` with each person's keyed national-id hash), so the
summary is read from real bundles: people shared by two regions counted once when both hash the NIR
under one key; an honest upper bound when some people carry no national identifier, or when two regions
use different keys (the key check says so without revealing either key); a region whose scope was
edited after its seal is not counted, and verify names the regional seal the summary no longer matches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tourniquet import national
from tourniquet.config import SiteConfig, load_site
from tourniquet.engine.regions import Region, load_regions, split_qualifier
from tourniquet.errors import ConfigError
from tourniquet.evidence import AnchorLog, seal
from tourniquet.flows.form import parse_sites
from tourniquet.journal import Journal
from tourniquet.nir import normalise

INCIDENT = "inc-20261201-nation"
NIRS = ["185057800608436", "292012A00112366", "178123510000129", "261056912345678", "199077512300024"]


def site_config(tmp_path: Path, name: str, *, key: str | None = "shared key", national_id: bool = True) -> SiteConfig:
    (tmp_path / name).mkdir(parents=True, exist_ok=True)
    key_file = tmp_path / name / "national-key"
    audit: dict[str, Any] = {"kind": "sqlite", "path": str(tmp_path / name / "log.sqlite"), "table": "journal",
                             "action_fields": {"VIEW": ["nom", "nir"]},
                             "subjects": {"table": "patient", "key": "id", "fields": {"nom": "nom", "nir": "nir"}}}
    if national_id and key is not None:
        key_file.write_text(key + "\n")
        audit["subjects"]["national_id"] = "nir"
        audit["national_id_key"] = {"file": str(key_file)}
    return SiteConfig.model_validate({
        "site": name, "state_dir": str(tmp_path / name / "state"), "evidence_dir": str(tmp_path / name / "evidence"),
        "directory": {"url": "ldap://127.0.0.1:1", "bind_dn": "cn=admin", "bind_password": {"env": "UNUSED"},
                      "base_dn": "ou=people,dc=example", "allow_plaintext": True},
        "audit": audit})


def keyed(key: str, nir: str) -> str:
    return hmac.new(key.encode(), normalise(nir).encode(), hashlib.sha256).hexdigest()


def bundle(config: SiteConfig, people: list[tuple[str, str | None, list[str]]], *, key: str = "shared key") -> Path:
    """A sealed regional bundle whose scope lists ``people`` as (subject id, NIR or None, categories)."""
    folder = config.evidence_dir / INCIDENT
    scope = folder / "scope" / "20261201T120000Z"
    scope.mkdir(parents=True)
    rows = ["subject,categories,fields,accounts,records,first,last,anomalous_only,found,national_hash"]
    by_category: dict[str, int] = {}
    for subject, nir, categories in people:
        for category in categories:
            by_category[category] = by_category.get(category, 0) + 1
        digest = keyed(key, nir) if nir else ""
        rows.append(f"{subject},{';'.join(categories)},nom,jdupont,1,2026-11-30T10:00:00+00:00,"
                    f"2026-11-30T10:00:00+00:00,1,1,{digest}")
    (scope / "subjects.csv").write_text("\n".join(rows) + "\n")
    (scope / "scope.json").write_text(json.dumps({"total": {"events": 3 * len(people), "subjects": len(people),
                                                            "subjects_by_category": by_category}}))
    journal = Journal(folder / "journal.jsonl", incident=INCIDENT, run="test")
    journal.write("scope", step="scope", folder=str(scope), people=len(people))
    seal(folder, incident=INCIDENT, anchors=AnchorLog(config.state_dir))
    return folder


def source(config: SiteConfig, accounts: int = 2) -> national.RegionSource:
    return national.RegionSource(name=config.site, config=config, status="completed",
                                 accounts=[f"{config.site}-{i}" for i in range(accounts)])


def test_people_of_two_regions_sharing_a_nir_are_counted_once(tmp_path: Path) -> None:
    hdf, nor = site_config(tmp_path, "hdf"), site_config(tmp_path, "nor")
    bundle(hdf, [("1", NIRS[0], ["identity"]), ("2", NIRS[1], ["identity", "contact"]), ("3", NIRS[2], ["identity"])])
    bundle(nor, [("77", NIRS[0], ["identity", "social_security_number"]), ("78", NIRS[3], ["identity"])])

    summary = national.summarise(INCIDENT, [source(hdf), source(nor)])

    assert [r.people for r in summary.regions] == [3, 2]
    assert summary.people == 4 and summary.in_several_regions == 1
    assert summary.people_by_category == {"contact": 1, "identity": 4, "social_security_number": 1}, \
        "a person's categories are the union of what each region showed"
    assert summary.exact and summary.complete
    assert "each person counted once" in summary.explanation
    text = national.render_markdown(summary, status="completed")
    assert "| **nation** | | 4 |" in text
    assert not any(nir in text for nir in NIRS), "never a NIR in the summary"


def test_people_without_a_national_identifier_make_the_total_an_upper_bound(tmp_path: Path) -> None:
    hdf, nor = site_config(tmp_path, "hdf"), site_config(tmp_path, "nor", national_id=False)
    bundle(hdf, [("1", NIRS[0], ["identity"]), ("2", None, ["identity"])])
    bundle(nor, [("77", NIRS[0], ["identity"]), ("78", NIRS[1], ["identity"])])  # nor hashes nothing: no key

    summary = national.summarise(INCIDENT, [source(hdf), source(nor)])

    assert summary.people == 4 and not summary.exact
    assert summary.at_least == 2
    assert "an upper bound: at most 4 people, at least 2" in summary.explanation
    assert "at most 4" in national.render_markdown(summary, status="completed")


def test_regions_hashing_under_different_keys_are_not_matched_and_the_key_check_says_so(tmp_path: Path) -> None:
    hdf, nor = site_config(tmp_path, "hdf", key="hdf key"), site_config(tmp_path, "nor", key="nor key")
    bundle(hdf, [("1", NIRS[0], ["identity"])], key="hdf key")
    bundle(nor, [("77", NIRS[0], ["identity"])], key="nor key")

    summary = national.summarise(INCIDENT, [source(hdf), source(nor)])

    checks = [r.key_check for r in summary.regions]
    assert checks[0] != checks[1] and all(len(c or "") == 16 for c in checks)
    assert national.key_check(site_config(tmp_path, "other", key="hdf key")) == checks[0], "same key, same check"
    assert summary.people == 2 and not summary.exact and "different keys" in summary.explanation


def test_a_region_whose_scope_changed_after_its_seal_is_not_counted_and_verify_names_the_seal(tmp_path: Path) -> None:
    hdf, nor = site_config(tmp_path, "hdf"), site_config(tmp_path, "nor")
    bundle(hdf, [("1", NIRS[0], ["identity"])])
    nor_folder = bundle(nor, [("77", NIRS[1], ["identity"])])
    folder = national.folder_for(hdf.evidence_dir, INCIDENT)
    summary = national.summarise(INCIDENT, [source(hdf), source(nor)])
    national.write_and_seal(folder, INCIDENT, summary, resolution={}, parts=[], status="completed", problems=[],
                            anchors_dir=hdf.state_dir)
    regional = {"hdf": hdf.evidence_dir / INCIDENT, "nor": nor_folder}
    assert national.verify_national(folder, INCIDENT, anchors_dir=hdf.state_dir, regional=regional).intact

    subjects = next(nor_folder.glob("scope/*/subjects.csv"))
    subjects.write_text(subjects.read_text() + f"78,identity,nom,x,1,a,b,1,1,{keyed('shared key', NIRS[2])}\n")
    later = national.summarise(INCIDENT, [source(hdf), source(nor)])
    (nor_later,) = [r for r in later.regions if r.region == "nor"]
    assert nor_later.people is None and "differ from seal" in nor_later.problems[0]
    assert later.people == 1 and not later.complete and "not counted: nor" in later.explanation

    seal(nor_folder, incident=INCIDENT, anchors=AnchorLog(nor.state_dir), note="someone re-sealed it")
    verdict = national.verify_national(folder, INCIDENT, anchors_dir=hdf.state_dir, regional=regional)
    assert not verdict.findings, "the national folder itself is intact"
    (manifest,) = [m for m in (nor_folder / "manifests").iterdir() if m.name == "0001.json"]
    manifest.write_text(manifest.read_text().replace("\n", "\n "))
    verdict = national.verify_national(folder, INCIDENT, anchors_dir=hdf.state_dir, regional=regional)
    assert any("nor" in f.file and "differs from the regional seal" in f.problem for f in verdict.findings)


def write_site_file(tmp_path: Path, name: str, **changes: Any) -> str:
    data: dict[str, Any] = {"site": name, "state_dir": f"{name}/state", "evidence_dir": f"{name}/evidence",
                            "directory": {"url": "ldap://127.0.0.1:1", "bind_dn": "cn=admin",
                                          "bind_password": {"env": "UNUSED"}, "base_dn": "ou=people,dc=example"}}
    data.update(changes)
    path = tmp_path / f"{changes.pop('file', name)}.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if k != "file"}))
    return str(path)


def test_sites_given_together_need_their_own_names_and_folders(tmp_path: Path) -> None:
    a, b = write_site_file(tmp_path, "hdf"), write_site_file(tmp_path, "nor")
    regions = load_regions([a, b])
    assert [r.name for r in regions] == ["hdf", "nor"]

    twin = write_site_file(tmp_path, "HDF", file="other")
    with pytest.raises(ConfigError, match="both named site: 'HDF'"):
        load_regions([a, twin])
    shared = write_site_file(tmp_path, "pdl", evidence_dir="hdf/evidence")
    with pytest.raises(ConfigError, match="share evidence_dir"):
        load_regions([a, shared])
    with pytest.raises(ConfigError, match="given twice"):
        load_regions([a, a])
    with pytest.raises(ConfigError, match="not found"):
        load_regions([a, str(tmp_path / "missing.yaml")])


def test_an_id_is_qualified_only_by_a_region_that_exists(tmp_path: Path) -> None:
    regions = [Region("hdf", "hdf.yaml", load_site(write_site_file(tmp_path, "hdf")), frozenset({"hdf", "hauts"})),
               Region("nor", "nor.yaml", load_site(write_site_file(tmp_path, "nor")), frozenset({"nor"}))]
    assert split_qualifier("nor:jdupont", regions) == (regions[1], "jdupont")
    assert split_qualifier(" HAUTS : jdupont ", regions) == (regions[0], "jdupont")
    assert split_qualifier("pdl:jdupont", regions) == (None, "pdl:jdupont"), "not a region: the id as given"
    assert split_qualifier("nor:", regions) == (None, "nor:")
    assert split_qualifier("uid=a:b,ou=people", regions)[0] is None


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_any_text_splits_into_a_region_or_the_id_itself(text: str) -> None:
    config = SiteConfig.model_validate({"site": "nor", "directory": {
        "url": "ldap://x", "bind_dn": "cn=a", "bind_password": {"env": "X"}, "base_dn": "ou=p"}})
    region, bare = split_qualifier(text, [Region("nor", "nor.yaml", config, frozenset({"nor"}))])
    assert (region is None and bare == text) or (region is not None and bare and text.lower().lstrip().startswith("nor"))


def test_the_site_field_takes_one_site_a_list_or_one_per_line() -> None:
    assert parse_sites("") == [] and parse_sites(None) == []
    assert parse_sites("/etc/t/hdf.yaml") == ["/etc/t/hdf.yaml"]
    assert parse_sites("/etc/t/hdf.yaml\n/etc/t/nor.yaml, /etc/t/pdl.yaml\n") == [
        "/etc/t/hdf.yaml", "/etc/t/nor.yaml", "/etc/t/pdl.yaml"]
    assert parse_sites(["a.yaml", "b.yaml", "a.yaml"]) == ["a.yaml", "b.yaml"]
    assert parse_sites('["a.yaml", "b.yaml"]') == ["a.yaml", "b.yaml"]


PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


@pytest.mark.parametrize("case, message", [
    ("missing", "not found"),
    ("same name", "both named site"),
    ("colon", "cannot qualify ids"),
    ("too many", "at most 50"),
    ("shared state", "share state_dir"),
])
def test_sites_given_together_that_cannot_be_used_are_named_not_a_traceback(
        tmp_path: Path, case: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from tourniquet.cli.main import main

    sites = [write_site_file(tmp_path, "hdf"), write_site_file(tmp_path, "nor")]
    if case == "missing":
        sites.append(str(tmp_path / "pdl.yaml"))
    elif case == "same name":
        sites.append(write_site_file(tmp_path, "NOR", file="nor-again"))
    elif case == "colon":
        sites.append(write_site_file(tmp_path, "pays:loire", file="pdl"))
    elif case == "too many":
        sites = [write_site_file(tmp_path, f"r{n}") for n in range(51)]
    else:
        sites.append(write_site_file(tmp_path, "pdl", state_dir="hdf/state"))

    code = main(["plan", PLAYBOOK, *[a for s in sites for a in ("--site", s)], "-i", "accounts=jdupont"])

    out, err = capsys.readouterr()
    assert code == 2 and message in err, (out, err)
    assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1


def test_every_site_down_means_nothing_runs_and_each_id_waits_naming_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tourniquet.cli.main import main

    (tmp_path / "bind").write_text("secret\n")
    sites = [write_site_file(tmp_path, name, directory={"url": "ldap://127.0.0.1:1", "allow_plaintext": True,
                                                         "bind_dn": "cn=admin", "bind_password": {"file": "bind"},
                                                         "base_dn": "ou=people,dc=example", "timeout": 2})
             for name in ("hdf", "nor")]

    code = main(["plan", PLAYBOOK, *[a for s in sites for a in ("--site", s)], "-i", "accounts=jdupont,nor:amartin"])

    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert "across 2 sites: nothing planned: jdupont (region hdf down, region nor down); " \
           "nor:amartin (region nor down)" in out, out
    assert "hdf  not run — its directory could not be searched" in out and "nor  not run" in out
    assert "waiting  'jdupont' could not be looked up: hdf, nor could not be searched" in out
    assert "waiting  'nor:amartin': nor could not be searched" in out
    assert "NOTHING PLANNED: nothing planned: " in err and "Traceback" not in out + err


def test_a_national_folder_that_cannot_be_made_is_refused_before_anything(tmp_path: Path) -> None:
    from tourniquet.engine.regions_run import execute_across

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    sites = [write_site_file(tmp_path, "hdf"), write_site_file(tmp_path, "nor")]
    with pytest.raises(ConfigError, match="cannot create the national summary's folder"):
        execute_across(PLAYBOOK, {"accounts": ["jdupont"]}, sites, dry_run=False,
                       national_dir=str(blocker / "national"))
    assert not (tmp_path / "hdf" / "state").exists(), "nothing was searched or written"
