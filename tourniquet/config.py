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
from tourniquet.connectors.tickets import TicketsConfig
from tourniquet.errors import ConfigError
from tourniquet.secrets import SecretRef

__all__ = ["SiteConfig", "SiteLimits", "load_site", "site_path", "ENV_VAR"]

ENV_VAR = "TOURNIQUET_SITE"


class SiteLimits(BaseModel):
    """Limits the site imposes on every playbook; a playbook can tighten, never loosen them."""

    model_config = ConfigDict(extra="forbid")

    max_accounts_ceiling: int = Field(
        50, ge=1, description="No playbook may change more accounts than this without an approval."
    )
    protected: list[str] = Field(default_factory=list, description="Accounts no playbook ever changes.")
    approval_timeout_ceiling: str = Field("24h", pattern=r"^\d+[smhdw]$")


class SiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(description="Name of the site (demo, staging, production …).")
    state_dir: Path = Field(Path("var"), description="Where plans, outboxes and run state live.")
    evidence_dir: Path = Field(Path("var/evidence"), description="Where each incident's evidence bundle lives.")
    directory: DirectoryConfig
    identity: IdentityConfig | None = None
    tickets: TicketsConfig = Field(default_factory=TicketsConfig)  # type: ignore[arg-type]
    audit: AuditConfig | None = None
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


def load_site(path: str | os.PathLike[str] | None = None) -> SiteConfig:
    file = site_path(path)
    try:
        data = yaml.safe_load(_expand(file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ConfigError(
            f"site configuration {file} not found (pass --site or set {ENV_VAR})"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot read site configuration: {exc}") from None
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
    return config


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
