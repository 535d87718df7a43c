"""The site configuration: which systems a run talks to. Playbooks never hold any of this.

One YAML file, ``tourniquet.yaml``; its path comes from ``--site``, else the
``TOURNIQUET_SITE`` environment variable, else ``./tourniquet.yaml``. Relative paths in
it are relative to the file. Secrets are references (:class:`~tourniquet.secrets.SecretRef`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tourniquet.connectors.audit import AuditConfig
from tourniquet.connectors.directory import DirectoryConfig
from tourniquet.connectors.identity import IdentityConfig
from tourniquet.connectors.notify import NotifyConfig
from tourniquet.connectors.tickets import TicketsConfig
from tourniquet.errors import ConfigError
from tourniquet.extras import MissingExtra, require
from tourniquet.secrets import SecretRef
from tourniquet.untrusted import MAX_YAML_NODES, BoundedLoader, expanded_size, read_bounded, text_problem

__all__ = ["SiteConfig", "SiteLimits", "load_site", "site_path", "ENV_VAR"]

ENV_VAR = "TOURNIQUET_SITE"


class SiteLimits(BaseModel):
    """Limits the site imposes on every playbook; a playbook can tighten, never loosen them."""

    model_config = ConfigDict(extra="forbid")

    max_accounts_ceiling: int = Field(
        50, ge=1, description="No playbook may change more accounts than this without an approval."
    )
    protected: list[str] = Field(default_factory=list, description="Accounts no playbook ever changes.")
    approval_timeout_ceiling: str = Field(
        "24h", pattern=r"^\d+[smhdw]$", description="No playbook waits longer than this for an approval (30s, 1h, 2d)."
    )


class SiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(description="Name of the site (demo, staging, production …).")
    state_dir: Path = Field(Path("var"), description="Where plans, outboxes and run state live.")
    evidence_dir: Path = Field(Path("var/evidence"), description="Where each incident's evidence bundle lives.")
    directory: DirectoryConfig
    identity: IdentityConfig | None = None
    tickets: TicketsConfig = Field(default_factory=TicketsConfig)  # type: ignore[arg-type]
    audit: AuditConfig | None = None
    notify: NotifyConfig | None = Field(None, description="Who is told what, through which channels.")
    limits: SiteLimits = Field(default_factory=SiteLimits)  # type: ignore[arg-type]
    source: Path | None = Field(None, exclude=True)


def site_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(ENV_VAR) or "tourniquet.yaml")


_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


def _expand(text: str) -> str:
    """``${NAME}`` / ``${NAME:-default}`` from the environment, for non-secret values like URLs."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set and has no default")

    return _VARIABLE.sub(value, text)


#: A site file is a page of YAML; it is read no further than this.
MAX_SITE_BYTES = 256 << 10


def _read(file: Path) -> Any:
    """The site file's YAML, read as hostile input: bounded size, nesting and aliases, valid UTF-8."""
    shown = ascii(str(file))[1:-1] if text_problem(str(file)) else str(file)
    try:
        raw = read_bounded(file, MAX_SITE_BYTES, "site configuration")
    except FileNotFoundError:
        raise ConfigError(f"site configuration {shown} not found (pass --site or set {ENV_VAR})") from None
    except (OSError, ValueError) as exc:  # TooLarge, a device or pipe, unreadable
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{shown}: cannot read site configuration: {reason}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    try:
        text = _expand(text)
    except ConfigError as exc:
        raise ConfigError(f"{shown}: {exc}") from None
    try:
        loader = BoundedLoader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: cannot read site configuration: {exc}") from None
    except (RecursionError, ValueError, TypeError) as exc:
        raise ConfigError(f"{shown}: cannot read site configuration: {type(exc).__name__}: {str(exc)[:200]}") from None
    if expanded_size(data, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise ConfigError(f"{shown}: more than {MAX_YAML_NODES} values once aliases are expanded (MAX_YAML_NODES)")
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:  # every text in it must be writable: no lone surrogate, no control character
        where, value = stack.pop()
        if isinstance(value, str) and (problem := text_problem(value)):
            raise ConfigError(f"{shown}: {where or 'the file'}: not valid text: {problem}")
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
            stack.extend((f"{where} (a key)", k) for k in value if isinstance(k, str))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
    return data


def load_site(path: str | os.PathLike[str] | None = None) -> SiteConfig:
    file = site_path(path)
    data = _read(file)
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: a site configuration is a mapping")
    try:
        config = SiteConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{file}: {problems}") from None
    base = file.resolve().parent
    config.state_dir = _absolute(base, config.state_dir)
    config.evidence_dir = _absolute(base, config.evidence_dir)
    config.source = file.resolve()
    _resolve_paths(config, base)
    if config.notify is not None:
        config.notify = config.notify.absolute(base)
        route = config.notify.practitioner
        if route is not None and route.referents is not None:
            from tourniquet.connectors.notify import Referents

            Referents.read(route.referents)  # a referents file that cannot be used is said now, not mid-incident
    _require_extras(config, file)
    return config


def _require_extras(config: SiteConfig, file: Path) -> None:
    """What the site file asks for that needs an extra not installed: one line naming it, before any run."""
    try:
        if config.directory.transport == "libldap":
            require("ldap", "libldap", "directory.transport: libldap")
        if config.audit is not None and config.audit.kind == "postgresql":
            require("psycopg", "postgresql", "audit.kind: postgresql")
    except MissingExtra as exc:
        raise MissingExtra(f"{file}: {exc}") from None


def _absolute(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else (base / path).resolve()


def _resolve_paths(config: SiteConfig, base: Path) -> None:
    """Make every *_file / path field in connector sections absolute, relative to the site file."""
    for section in (config.directory, config.identity, config.tickets, config.audit):
        if section is None:
            continue
        for name in type(section).model_fields:
            value: Any = getattr(section, name)
            if (name.endswith("_file") or name in ("path", "directory")) and isinstance(value, (str, Path)) and value:
                resolved = _absolute(base, Path(value))
                setattr(section, name, type(value)(resolved) if isinstance(value, Path) else str(resolved))
            elif isinstance(value, SecretRef) and value.file:
                setattr(section, name, value.model_copy(update={"file": str(_absolute(base, Path(value.file)))}))
