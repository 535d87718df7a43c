"""The documentation cannot drift from the code.

- The reference pages under docs/reference/ are what ``python -m tourniquet.docs_reference`` writes today: every
  CLI command and option, every action with its parameters and results, every site-file setting.
- Every ``tourniquet …`` line in a runbook's shell blocks is a command the argument parser accepts.
- ``mkdocs build --strict`` passes: no broken link, no missing page, no stale generated page.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tourniquet.cli.main import build_parser
from tourniquet.docs_reference import REFRESH_COMMAND, stale_pages

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def test_the_generated_reference_pages_say_what_the_code_says() -> None:
    stale = stale_pages(REPO)
    assert stale == [], f"stale reference pages {stale}: refresh them with `{REFRESH_COMMAND}` and commit them"


def _commands(parser: argparse.ArgumentParser, prefix: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def test_every_command_and_option_is_in_the_cli_reference() -> None:
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#+ `([^`]+)`", page, re.MULTILINE))
    for command, parser in _commands(build_parser(), "tourniquet"):
        if command != "tourniquet":
            assert command in headings, f"{command}: no section in docs/reference/cli.md"
        section = page if command == "tourniquet" else page.split(f"# `{command}`", 1)[1]
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}`" in section, f"{command} {option}: not in docs/reference/cli.md"


def test_every_action_and_every_site_setting_is_in_its_reference() -> None:
    import tourniquet.actions  # noqa: F401  (registers the catalogue)
    from tourniquet import registry
    from tourniquet.config import SiteConfig

    actions = (DOCS / "reference" / "actions.md").read_text(encoding="utf-8")
    for spec in registry.all_actions():
        assert f"### `{spec.name}`" in actions, spec.name
        section = actions.split(f"### `{spec.name}`", 1)[1].split("\n### ", 1)[0]
        for parameter in spec.parameters.model_fields:
            assert f"| `{parameter}` |" in section, f"{spec.name}: parameter {parameter} not in docs/reference/actions.md"

    settings = (DOCS / "reference" / "site-settings.md").read_text(encoding="utf-8")
    for path in _setting_paths(SiteConfig, ""):
        assert f"| `{path}` |" in settings, f"site setting {path} not in docs/reference/site-settings.md"
    assert "| `directory.bind_dn` |" in settings and "| `audit.subjects.national_id` |" in settings


def _setting_paths(model: type, prefix: str) -> Iterator[str]:
    """Every setting of a site file, nested sections included (``audit.columns.subject``)."""
    import typing

    from pydantic import BaseModel

    from tourniquet.secrets import SecretRef

    def models(annotation: object) -> list[type]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation is not SecretRef:
            return [annotation]
        return [m for argument in typing.get_args(annotation) for m in models(argument)]

    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        if info.exclude:
            continue
        path = prefix + (info.alias or name)
        if prefix:  # top-level sections are headings; their settings are rows
            yield path
        elif not models(info.annotation):
            yield path
        for nested in models(info.annotation):
            inner = {list: "[]", dict: ".<name>"}.get(typing.get_origin(info.annotation), "")
            yield from _setting_paths(nested, f"{path}{inner}.")


FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.MULTILINE | re.DOTALL)
SHELL = {"sh", "bash", "shell", "console"}


def shell_lines(markdown: str) -> Iterator[str]:
    """The command lines of a page's shell blocks: continuations joined, prompts and comments dropped."""
    for block in FENCE.finditer(markdown):
        if block.group("lang") not in SHELL:
            continue
        indent = len(block.group("indent"))
        text = "\n".join(line[indent:] for line in block.group("body").splitlines())
        for line in text.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                yield line


def tourniquet_arguments(line: str) -> list[str] | None:
    """The arguments of a ``tourniquet`` (or ``.venv/bin/tourniquet``) command on the line, else None."""
    words = shlex.split(line, comments=True)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):  # VAR=value before the command
        words = words[1:]
    if not words or os.path.basename(words[0]) != "tourniquet":
        return None
    arguments = []
    for word in words[1:]:
        if word in ("|", "||", "&&", ";", ">", "2>&1") or word.startswith((">", "|")):
            break
        arguments.append(word)
    return arguments


RUNBOOKS = sorted((DOCS / "runbooks").glob("*.md"))
PAGES = sorted(DOCS.rglob("*.md")) + [REPO / "README.md"]


def test_the_runbooks_are_there() -> None:
    names = {page.stem for page in RUNBOOKS}
    assert {"alert-arrived", "practitioner-calls", "false-alarm", "investigation-over", "dpo-72-hours",
            "region-down", "ticket-system-down", "verify-evidence"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(REPO)) for page in PAGES])
def test_every_command_in_a_runbook_or_page_is_one_that_exists(page: Path) -> None:
    """Runbooks first, but every page's (and the README's) ``tourniquet …`` lines: none may drift."""
    parser = build_parser()
    lines = list(shell_lines(page.read_text(encoding="utf-8")))
    variables = {}  # NAME=value lines of the page: "$NAME" is that value, else the name itself (INCIDENT)
    for line in lines:
        if found := re.match(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line):
            words = shlex.split(found.group(2), comments=True)
            variables[found.group(1)] = " ".join(words)
    for line in lines:
        expanded_line = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                               lambda match: variables.get(match.group(1), match.group(1)), line)
        arguments = tourniquet_arguments(expanded_line)
        if arguments is None:
            continue
        try:
            parser.parse_args(arguments)
        except SystemExit as exc:
            assert exc.code == 0, f"{page.relative_to(REPO)}: `{line}` is not a command tourniquet accepts"


def test_the_runbook_parser_finds_commands_in_tabs_and_continuations() -> None:
    page = ('=== "Terminal"\n\n    ```sh\n    tourniquet plan credential-misuse \\\n      -i accounts="$ACCOUNTS"\n'
            '    ```\n\n```sh\n# a comment\nTOURNIQUET_SITE=x .venv/bin/tourniquet evidence verify "$INCIDENT"\n'
            'prefect deployment ls\n```\n')
    lines = list(shell_lines(page))
    assert [tourniquet_arguments(line) for line in lines] == [
        ["plan", "credential-misuse", "-i", "accounts=$ACCOUNTS"], ["evidence", "verify", "$INCIDENT"], None]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evidence", "check", "x"])


def test_the_exit_codes_page_lists_each_code_as_the_code_defines_it() -> None:
    from tourniquet.outcomes import ExitCode

    page = (DOCS / "reference" / "exit-codes.md").read_text(encoding="utf-8")
    for code in ExitCode:
        row = f"| {int(code)} | `{code.name}` | "
        assert row in page, f"exit code {code!r} is not in docs/reference/exit-codes.md"
        said = page.split(row, 1)[1].split(" |", 1)[0].replace("`", "")
        assert said == code.description, f"exit code {code.name}: the page says {said!r}, the code {code.description!r}"


def test_the_readme_is_a_front_door_whose_links_lead_somewhere() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200, "README.md: at most 200 lines; the rest belongs in docs/"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (REPO / target).exists(), f"README.md links to {target}, which is not there"


def test_the_documentation_site_builds_strictly(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                           cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
