"""A hygiene playbook with a mistake is refused before anything runs, every problem at its file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tourniquet.cli.main import main
from tourniquet.errors import PlaybookErrors
from tourniquet.hygiene import load_hygiene, load_hygiene_text
from tourniquet.hygiene.checks import CHECKS

SHIPPED = Path(__file__).resolve().parents[1] / "playbooks" / "hygiene.yaml"


def test_the_shipped_playbook_declares_every_check() -> None:
    loaded = load_hygiene(SHIPPED)
    assert {c.check for c in loaded.playbook.checks} == set(CHECKS)
    assert loaded.playbook.respond is not None and loaded.playbook.respond.execute_at is None  # plans only


def test_every_problem_is_reported_at_its_line() -> None:
    text = """hygiene: test
version: 1
title: broken
checks:
  - id: dormant
    check: dormant
    severity: urgent
    with:
      days: -3
  - id: dormant
    check: dormnat
  - id: hours
    check: off_hours
    with:
      working_hours: [20, 7]
      recent_dayz: 3
respond:
  playbok: credential-misuse
"""
    with pytest.raises(PlaybookErrors) as caught:
        load_hygiene_text(text, "h.yaml")
    errors = [str(e) for e in caught.value.errors]
    assert any(e.startswith("h.yaml:7:") and "severity" in e for e in errors), errors
    assert any(e.startswith("h.yaml:18:") and "playbok" in e and "did you mean 'playbook'" in e for e in errors), errors
    assert any(e.startswith("h.yaml:9:") and "checks[0].with.days" in e for e in errors), errors  # reported too


def test_check_parameters_are_validated_with_their_position() -> None:
    text = """hygiene: test
title: params
checks:
  - id: dormant
    check: dormant
    with:
      days: -3
  - id: dormant
    check: dormnat
  - id: hours
    check: off_hours
    with:
      working_hours: [20, 7]
      recent_dayz: 3
"""
    with pytest.raises(PlaybookErrors) as caught:
        load_hygiene_text(text, "h.yaml")
    errors = [str(e) for e in caught.value.errors]
    assert any(e.startswith("h.yaml:7:") and "checks[0].with.days" in e for e in errors), errors
    assert any(e.startswith("h.yaml:8:") and "duplicate check id 'dormant'" in e for e in errors), errors
    assert any(e.startswith("h.yaml:9:") and "unknown check 'dormnat', did you mean 'dormant'" in e for e in errors), errors
    assert any(e.startswith("h.yaml:13:") and "working_hours" in e for e in errors), errors
    assert any(e.startswith("h.yaml:14:") and "recent_dayz" in e and "recent_days" in e for e in errors), errors


def test_validate_command_knows_hygiene_playbooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("hygiene: x\ntitle: t\nchecks:\n  - id: a\n    check: nope\n", encoding="utf-8")
    assert main(["validate", str(SHIPPED)]) == 0
    assert "10 hygiene checks" in capsys.readouterr().out
    assert main(["validate", str(broken)]) == 1
    assert f"{broken}:5:" in capsys.readouterr().err


def test_the_platform_section_is_validated_with_its_position() -> None:
    text = """hygiene: test
title: platform
platform:
  working_hours: [20, 7]
  known_networks: [10.20.0.0/16, "hospital wifi", 10.0.0.0/33]
  lookback_dayz: 90
checks:
  - id: night
    check: night_network
    with:
      min_off_hours_share: 2
"""
    with pytest.raises(PlaybookErrors) as caught:
        load_hygiene_text(text, "h.yaml")
    errors = [str(e) for e in caught.value.errors]
    assert any(e.startswith("h.yaml:4:") and "working_hours" in e for e in errors), errors
    assert any(e.startswith("h.yaml:5:") and "'hospital wifi' is not a network" in e for e in errors), errors
    assert any(e.startswith("h.yaml:6:") and "did you mean 'lookback_days'" in e for e in errors), errors
    assert any(e.startswith("h.yaml:11:") and "min_off_hours_share" in e for e in errors), errors


def test_the_new_checks_default_to_the_platforms_hours() -> None:
    loaded = load_hygiene(SHIPPED)
    assert loaded.playbook.platform.working_hours == (7, 20) and loaded.playbook.platform.lookback_days == 183
    for spec in loaded.playbook.checks:
        if spec.check in ("off_hours", "night_network", "behaviour_change"):
            assert loaded.params[spec.id].working_hours is None  # type: ignore[attr-defined]
