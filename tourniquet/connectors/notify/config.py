"""The site's ``notify:`` section: who is told, through which channels, in which language.

A channel is an Apprise URL (``mailto://``, ``json://``, ``mmosts://``, SMS gateways …), a URL
whose secret parts are references (``json://host/hooks/{env: SOC_HOOK}``), a whole URL kept as a
secret (``{env: SOC_URL}``), or a Prefect notification block (``{prefect_block: slack-webhook/soc}``). The
URL with its secrets filled in exists only for the moment of sending: configuration, journal,
outbox and logs hold the reference.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tourniquet.secrets import SecretRef

__all__ = ["ChannelRef", "PractitionerRoute", "NotifyConfig", "ROLES", "PLACEHOLDER"]

ROLES = ("soc", "dpo", "practitioner")
#: ``{env: NAME}``, ``{file: PATH}``, ``{prefect_secret: NAME}`` (``{secret: NAME}`` is the same) inside a URL.
PLACEHOLDER = re.compile(r"\{\s*(env|file|prefect_secret|secret)\s*:\s*([^{}]+?)\s*\}")


class ChannelRef(BaseModel):
    """One channel: a URL (secret parts as references), a URL kept whole as a secret, or a Prefect block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(None, description="Apprise URL; secret parts written {env: NAME}, {file: PATH} "
                                              "or {prefect_secret: NAME}.")
    secret: SecretRef | None = Field(None, description="The whole URL is a secret kept there.")
    prefect_block: str | None = Field(None, pattern=r"^[a-z0-9-]+/[A-Za-z0-9_.-]+$",
                                      description="A Prefect notification block as TYPE/NAME (e.g. slack-webhook/soc, "
                                                  "as `prefect block ls` lists it).")
    attachments: bool = Field(True, description="False: files are linked, not attached (chat channels).")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"url": data}
        if isinstance(data, dict) and set(data) & {"env", "file", "prefect_secret"} and "url" not in data:
            return {"secret": {k: v for k, v in data.items() if k in ("env", "file", "prefect_secret")},
                    **{k: v for k, v in data.items() if k not in ("env", "file", "prefect_secret")}}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> "ChannelRef":
        given = [n for n in ("url", "secret", "prefect_block") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("a channel is one of: an Apprise URL, a secret reference, {prefect_block: NAME}")
        if self.url is not None and "://" not in PLACEHOLDER.sub("x", self.url):
            raise ValueError(f"{self.describe()}: not an Apprise URL (scheme://…)")
        if self.url is not None and (where := _inline_secret(self.url)):
            raise ValueError(f"{self.describe()}: a secret written inline ({where}): secrets are never written inline, "
                             "use {env: NAME}, {file: PATH} or {prefect_secret: NAME} in its place")
        return self

    def describe(self) -> str:
        """How the channel is named in the journal, logs and errors: never its secret."""
        if self.prefect_block:
            return f"Prefect block {self.prefect_block}"
        if self.secret is not None:
            return f"URL in {self.secret.describe()}"
        url = self.url or ""
        scheme = url.split("://", 1)[0]
        host = PLACEHOLDER.sub("…", url.split("://", 1)[1] if "://" in url else "").split("/", 1)[0].split("?", 1)[0]
        return f"{scheme}://{host.rsplit('@', 1)[-1]}"

    def absolute(self, base: Path) -> "ChannelRef":
        """File references (``{file: x}``) made absolute, relative to the site file."""
        if self.secret is not None and self.secret.file:
            path = Path(self.secret.file)
            return self.model_copy(update={"secret": self.secret.model_copy(
                update={"file": str(path if path.is_absolute() else (base / path).resolve())})})
        if self.url is not None and self.url.startswith("folder://") and not self.url[len("folder://"):].startswith("/"):
            return self.model_copy(update={"url": "folder://" + str((base / self.url[len("folder://"):]).resolve())})
        if self.url is not None:
            def fix(match: re.Match[str]) -> str:
                kind, value = match.group(1), match.group(2)
                if kind != "file" or Path(value).is_absolute():
                    return match.group(0)
                return "{file: " + str((base / value).resolve()) + "}"

            return self.model_copy(update={"url": PLACEHOLDER.sub(fix, self.url)})
        return self


#: Query parameters of Apprise URLs that carry a credential.
SECRET_PARAMETERS = frozenset({"pass", "password", "secret", "token", "apikey", "api_key", "key", "access_token",
                               "webhook", "auth", "pwd"})


def _inline_secret(url: str) -> str:
    """Where a URL holds a credential written as it is (a password in user:pass@, a token= value): "" if nowhere."""
    rest = url.split("://", 1)[1] if "://" in url else url
    authority = re.split(r"[/?]", PLACEHOLDER.sub("{ref}", rest), maxsplit=1)[0]
    if "@" in authority:
        userinfo = authority.rsplit("@", 1)[0]
        if ":" in userinfo and userinfo.split(":", 1)[1] not in ("", "{ref}"):
            return "the password in user:password@"
    query = rest.split("?", 1)[1] if "?" in rest else ""
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name.strip().lower() in SECRET_PARAMETERS and value and not PLACEHOLDER.fullmatch(value.strip()):
            return f"the {name.strip()}= parameter"
    return ""


class PractitionerRoute(BaseModel):
    """How a practitioner is told: through the referent of their establishment, or a contact the site names.

    Never the account's own mailbox: whoever took the account may be reading it.
    """

    model_config = ConfigDict(extra="forbid")

    via: Literal["referent", "contact"] = Field(
        "referent", description="referent: the establishment's referent (referents CSV); contact: the channels "
                                "listed in `to` (a helpdesk, a number the site names).")
    referents: Path | None = Field(None, description="CSV: establishment (a DN pattern), name, email, phone, url.")
    mail: ChannelRef | None = Field(None, description="Base mailto:// URL for a referent's e-mail (to= is added).")
    to: list[ChannelRef] = Field(default_factory=list, description="Channels for via: contact, or when no "
                                                                   "referent matches.")
    call: str = Field("", description="Whom the practitioner calls (a number, a desk): said in the message.")

    @model_validator(mode="after")
    def _route(self) -> "PractitionerRoute":
        if self.via == "referent" and self.referents is None:
            raise ValueError("practitioner via referent needs `referents: FILE.csv`")
        if self.via == "contact" and not self.to:
            raise ValueError("practitioner via contact needs `to: [channels]`")
        return self


class NotifyConfig(BaseModel):
    """``notify:`` in the site file. A role with no channel is not told (and the plan says so)."""

    model_config = ConfigDict(extra="forbid")

    soc: list[ChannelRef] = Field(default_factory=list, description="The security team's channels.")
    dpo: list[ChannelRef] = Field(default_factory=list, description="The data protection officer's channels.")
    practitioner: PractitionerRoute | None = None
    soc_language: Literal["fr", "en"] = Field("en", description="Language of the SOC's messages.")
    link: str = Field("", description="Base URL of the Prefect UI (links to runs); empty: evidence paths.")
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds a channel has to take one message.")
    establishment: str = Field("", description="Name the practitioner and the DPO see (default: the site name).")

    @field_validator("soc", "dpo", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value

    def channels(self, role: str) -> list[ChannelRef]:
        if role == "soc":
            return list(self.soc)
        if role == "dpo":
            return list(self.dpo)
        return list(self.practitioner.to) if self.practitioner is not None else []

    def absolute(self, base: Path) -> "NotifyConfig":
        """Paths and file references relative to the site file made absolute."""
        practitioner = self.practitioner
        if practitioner is not None:
            referents = practitioner.referents
            practitioner = practitioner.model_copy(update={
                "referents": referents if referents is None or referents.is_absolute() else (base / referents).resolve(),
                "mail": practitioner.mail.absolute(base) if practitioner.mail else None,
                "to": [c.absolute(base) for c in practitioner.to]})
        return self.model_copy(update={"soc": [c.absolute(base) for c in self.soc],
                                       "dpo": [c.absolute(base) for c in self.dpo], "practitioner": practitioner})
