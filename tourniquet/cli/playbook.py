"""``tourniquet validate|plan|run|actions|schema``: playbooks, from the file to a run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tourniquet.cli.common import (
    incident_id,
    one_site,
    print_errors,
    say_exit,
    site_argument,
    sites_of,
    use_local_server,
)
from tourniquet.errors import PlaybookErrors

__all__ = ["register"]


def cmd_validate(args: argparse.Namespace) -> int:
    from tourniquet.cli.hygiene import validate_hygiene
    from tourniquet.engine.loader import load_playbook

    failed = 0
    for path in args.playbooks:
        hygiene = validate_hygiene(path)  # hygiene playbooks live next to the response playbooks
        if hygiene is not None:
            failed += hygiene
            continue
        try:
            loaded = load_playbook(path)
        except PlaybookErrors as exc:
            print_errors(exc)
            failed += 1
            continue
        print(f"{path}: ok ({len(loaded.playbook.steps)} steps)")
    return 1 if failed else 0


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    from tourniquet.engine.inputs import parse_cli_inputs

    return parse_cli_inputs(args.input or [])


def _checked_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The inputs, checked against the playbook before any flow run starts (a bad id is named here)."""
    from tourniquet.engine.execute import find_playbook
    from tourniquet.engine.inputs import resolve_inputs
    from tourniquet.engine.loader import load_playbook

    inputs = _inputs(args)
    resolve_inputs(load_playbook(find_playbook(args.playbook)).playbook, inputs)
    return inputs


def _print_outcome(result: dict[str, Any]) -> int:
    """The outcome first (headline, who was contained, what is needed or refused), as the journal says;
    returns the exit code it gives (:class:`~tourniquet.outcomes.ExitCode`)."""
    label = "PLAN (dry run, nothing changed)" if result["dry_run"] else "RUN"
    outcome = result["outcome"]
    lines = outcome["lines"]
    print(f"{label}: {result['playbook']} incident {result['incident']}: {lines[0]}")
    for line in lines[1:]:
        print(f"  {line}")
    if result.get("error"):
        print(f"  error: {result['error']}")
    return int(outcome["exit_code"])


def _print_changes(summary: Any) -> None:
    """A plan's changes, after what the run will ask: each with its state before and after."""
    for change in summary.changes:
        if change.implied_by:
            print(f"  {'implied':8} {change.target}: {change.operation} (set by {change.implied_by})")
        elif change.outcome != "noop":
            print(f"  {change.outcome:8} {change.target}: {change.operation} {json.dumps(change.before)} -> "
                  f"{json.dumps(change.after)}")
    for failure in summary.failures:
        print(f"  failed   {failure['item'] or failure['step']}: {failure['error']}")


def _print_paths(result: dict[str, Any]) -> None:
    for line in result.get("notifications") or []:
        print(f"  told     {line}")
    print(f"  journal: {result['journal']}")
    print(f"  report:  {result['report']}")


def cmd_plan(args: argparse.Namespace) -> int:
    from tourniquet.cli.progress import TerminalObserver, TerminalProgress
    from tourniquet.engine.execute import execute_playbook
    from tourniquet.errors import StorageFailed

    sites = sites_of(args)
    if len(sites) > 1:
        from tourniquet.cli.regions import plan_across

        return plan_across(args, _inputs(args), sites)
    try:
        with TerminalProgress(f"plan {args.playbook}") as progress:
            summary = execute_playbook(args.playbook, _inputs(args), dry_run=True, incident=args.incident,
                                       site=one_site(args),
                                       observer=TerminalObserver(progress) if progress.enabled else None)
    except StorageFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    result = summary.as_result()
    code = _print_outcome(result)
    _print_changes(summary)
    _print_paths(result)
    _print_plan(summary)
    say_exit(code, result["outcome"]["headline"], True)
    return code


def _print_plan(summary: Any) -> None:
    """The plan file: each id and what it resolved to, each change from its state, the hash to approve."""
    if summary.plan is None:
        return
    from tourniquet.engine.plan_text import plan_lines
    from tourniquet.engine.plans import list_plans

    plan = next((p for p in list_plans(summary.plan.parent) if p.sha256 == summary.plan_sha256), None)
    if plan is None:
        return
    for line in plan_lines(plan):
        print(line)
    print(f"  apply it with: tourniquet apply {summary.incident} --approver NAME --plan {plan.sha256[:12]}")


def cmd_run(args: argparse.Namespace) -> int:
    inputs = _checked_inputs(args)
    sites = sites_of(args)
    if len(sites) > 1:
        from tourniquet.cli.regions import run_across

        return run_across(args, inputs, sites)
    server = use_local_server(one_site(args))
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from tourniquet.cli.common import hide_temporary_server_notes
    from tourniquet.cli.prefect_api import drain_prefect_queues
    from tourniquet.cli.progress import TerminalProgress, quiet_prefect_console
    from tourniquet.flows.artifacts import progress_listener
    from tourniquet.flows.respond import RunFailed, run_playbook
    from tourniquet.logs import configure_logging

    configure_logging()  # Prefect's logging too, so that its console can be quieted under the bar
    hide_temporary_server_notes()
    starting = "starting a temporary Prefect server" if server.kind == "temporary" else ""
    progress = TerminalProgress(f"{'plan' if args.dry_run else 'run'} {args.playbook}", first=starting)
    # A CLI run is short-lived: the heartbeat thread only adds a second of latency.
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), \
            quiet_prefect_console(progress.enabled), progress, progress_listener(progress.update):
        server.start()
        state = run_playbook(args.playbook, inputs, dry_run=args.dry_run, incident=args.incident or "",
                             site=one_site(args) or "", return_state=True)
        result = state.result(raise_on_failure=False)
        headline = result["outcome"]["headline"] if isinstance(result, dict) else "failed"
        progress.update(99.0, f"{headline}; sending the run's events to Prefect")
        drain_prefect_queues()
        progress.update(100.0, headline)
    if not isinstance(result, dict):  # nothing contained, or stopped: the flow's Failed state carries the reason
        reason = str(result) if isinstance(result, RunFailed) else (state.message or state.name)
        print(server.describe(), file=sys.stderr)
        print(f"FAILED: {reason}", file=sys.stderr)
        return result.exit_code if isinstance(result, RunFailed) else 1
    code = _print_outcome(result)
    _print_paths(result)
    if not result["dry_run"]:
        _print_root(result["journal"])
    print(server.describe())
    say_exit(code, result["outcome"]["headline"], bool(result["dry_run"]))
    return code


def _print_root(journal: str) -> None:
    """The root hash just sealed: it is on the ticket and in the anchor log too."""
    from pathlib import Path

    manifests = sorted((Path(journal).parent / "manifests").glob("[0-9][0-9][0-9][0-9].json"))
    if manifests:
        try:
            root = json.loads(manifests[-1].read_text(encoding="utf-8")).get("root")
        except (OSError, ValueError):
            return
        print(f"  sealed:  {manifests[-1].name}, root {root} (on the ticket and in the anchor log)")


def cmd_actions(args: argparse.Namespace) -> int:
    import tourniquet.actions  # noqa: F401  (the catalogue: importing it registers every action)
    from tourniquet import registry

    for spec in registry.all_actions():
        flags = []
        if spec.changes:
            flags.append("changes")
        if spec.undo:
            flags.append(f"undo: {spec.undo}")
        print(f"{spec.name}{'  [' + ', '.join(flags) + ']' if flags else ''}")
        print(f"    {spec.summary}")
        for name, type_name, required, description in spec.describe():
            print(f"    - {name}: {type_name}{'' if required else ' (optional)'}  {description}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from tourniquet.schema import render_schema

    text = render_schema()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: Any) -> None:
    validate = sub.add_parser("validate", help="check playbooks; prints file:line:col: message per problem")
    validate.add_argument("playbooks", nargs="+")
    validate.set_defaults(func=cmd_validate)

    for name, func, help_text in (("plan", cmd_plan, "dry run: list every change, change nothing; writes the plan "
                                                     "file (and its SHA-256) that `apply` applies"),
                                  ("run", cmd_run, "run the playbook as a Prefect flow")):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("playbook", help="path or name (credential-misuse)")
        command.add_argument("--input", "-i", action="append", metavar="NAME=VALUE",
                             help="playbook input; lists as a,b,c or JSON")
        site_argument(command, several=True)
        command.add_argument("--incident", type=incident_id,
                             help="incident id (default: derived from playbook and inputs)")
        if name == "run":
            command.add_argument("--dry-run", action="store_true", help="plan inside a Prefect flow run")
        command.set_defaults(func=func)

    actions = sub.add_parser("actions", help="list every action with its parameters")
    actions.set_defaults(func=cmd_actions)

    schema = sub.add_parser("schema", help="print the playbook JSON Schema")
    schema.add_argument("--output", "-o")
    schema.set_defaults(func=cmd_schema)
