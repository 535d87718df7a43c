"""Directory checks: each account looked at once, during the streaming sweep.

``not_in_register`` (the national register extract), ``dormant`` (no login, no access-log event),
``password_age`` (a password nobody changed for a long time) and ``unprotected`` (no lockout policy).
What a login, a creation date, a password change and a disabled account look like in each product
is the directory flavor's business (OpenLDAP ppolicy, 389-DS, Active Directory's lastLogonTimestamp,
whenCreated, pwdLastSet, userAccountControl and accountExpires). Imports the check base, the register
connector and the directory flavors; imported by the catalogue only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from pydantic import Field

from tourniquet.connectors.directory.flavors import FLAVORS, Flavor, directory_time
from tourniquet.connectors.register import RegisterExtract, is_valid_rpps, open_extract
from tourniquet.hygiene.checks.base import DirectoryCheck, Params
from tourniquet.hygiene.findings import Finding

__all__ = ["NotInRegister", "Dormant", "PasswordAge", "Unprotected"]


def _flavor(check: DirectoryCheck) -> Flavor:
    return FLAVORS[check.ctx.site.config.directory.flavor]()


class RegisterParams(Params):
    extract: str = Field(
        "register",
        description="Extract file (.txt or .zip) or folder holding the daily downloads (the newest is used); "
                    "relative to the site's state_dir. The flow's `register` parameter overrides it.",
    )
    missing_rpps: bool = Field(True, description="Also report accounts with no (or a malformed) RPPS number.")
    max_age_days: int = Field(7, ge=1, description="Warn when the newest extract is older than this.")


class NotInRegister(DirectoryCheck):
    """Accounts whose RPPS number is not in the latest national register extract."""

    name = "not_in_register"
    parameters = RegisterParams

    extract: RegisterExtract

    def prepare(self) -> None:
        self.attributes = (self.ctx.site.config.directory.rpps_attribute,)
        location = Path(self.ctx.register or self.params.extract)
        if not location.is_absolute():
            location = self.ctx.site.config.state_dir / location
        self.extract = open_extract(location)
        self.evidence.update(self.extract.evidence())
        self.evidence["register_other_identifier_lines"] = self.extract.other_identifiers
        self.evidence["register_malformed_lines"] = self.extract.malformed
        warnings = list(self.extract.warnings)
        if self.extract.extracted_at and self.ctx.as_of - self.extract.extracted_at > timedelta(days=self.params.max_age_days):
            warnings.append(f"the newest extract is from {self.extract.extracted_at:%Y-%m-%d}, "
                            f"older than {self.params.max_age_days} days")
        self.evidence["warnings"] = warnings
        self.source = {"register_file": Path(self.extract.file).name,
                       "register_date": self.evidence["register_date"]}
        stamp = self.extract.extracted_at
        self.shown_date = f"{stamp:%Y-%m-%d %H:%M}" if stamp else "unknown date"

    def inspect(self, dn: str, account: str, attributes: dict[str, list[str]]) -> Iterable[Finding]:
        values = attributes.get(self.ctx.site.config.directory.rpps_attribute) or []
        rpps = values[0].strip() if values else ""
        if len(rpps) == 12 and rpps.startswith("8"):
            rpps = rpps[1:]  # stored as the national id 8+RPPS
        if len(rpps) == 11 and rpps.isdigit() and rpps in self.extract.rpps:
            return  # registered (the extract holds well-formed numbers only): the common case, kept cheap
        if not rpps or not is_valid_rpps(rpps):
            if self.params.missing_rpps:
                what = "no RPPS number" if not rpps else f"RPPS number {rpps!r} is malformed (11 digits, Luhn)"
                yield self.finding(account, f"{what}: cannot be checked against the national register",
                                   {"rpps": rpps or None, **self.source}, dn)
            return
        yield self.finding(
            account,
            f"RPPS {rpps} is not in the national register extract of {self.shown_date}",
            {"rpps": rpps, **self.source}, dn,
        )


class DormantParams(Params):
    days: int = Field(90, ge=1, description="No successful login and no access-log event for this many days.")
    login_attributes: list[str] | None = Field(
        None,
        description="Directory attributes holding the last successful login; default: the flavor's (ppolicy "
                    "pwdLastSuccess and authTimestamp, 389-DS lastLoginTime, AD lastLogonTimestamp).",
    )
    include_locked: bool = Field(False, description="Also report accounts already locked, disabled or expired.")


_ldap_time = directory_time  # GeneralizedTime or an AD FILETIME


class Dormant(DirectoryCheck):
    """Accounts nobody has used for N days: no successful login recorded and no access-log event."""

    name = "dormant"
    parameters = DormantParams

    def prepare(self) -> None:
        self.since = self.ctx.as_of - timedelta(days=self.params.days)
        self.active: set[str] | None = None
        self.key = self.ctx.site.config.audit.account_key if self.ctx.site.config.audit else "uid"
        directory = self.ctx.site.config.directory
        key_attribute = {"rpps": (directory.rpps_attribute,), "mail": (directory.mail_attribute,)}.get(self.key, ())
        self.flavor = _flavor(self)
        self.login_attributes = tuple(self.params.login_attributes or self.flavor.login_attributes)
        self.attributes = (self.login_attributes + (self.flavor.created_attribute,) + self.flavor.inactive_attributes
                           + key_attribute)
        self.evidence["window"] = {"from": self.since.isoformat(), "to": self.ctx.as_of.isoformat()}
        if not self.ctx.has_audit:
            self.evidence["warnings"] = ["no access log configured: only the directory's login attributes count"]
            return
        audit = self.ctx.audit
        first = len(audit.queries)
        coverage = audit.coverage()
        sql = f"SELECT DISTINCT {audit.account} FROM {audit.table} WHERE {audit.ts} >= :since AND {audit.ts} < :end"
        since_day = self.ctx.day(self.params.days)
        self.active = {str(row[0]) for row in audit.query("accounts active in the window", sql,
                                                          {"since": since_day, "end": self.ctx.day(0)})}
        self.evidence["access_log"] = coverage
        self.evidence["accounts_active_in_log"] = len(self.active)
        if coverage["first_event"] and coverage["first_event"][:10] > since_day:
            self.evidence["warnings"] = [f"the access log starts {coverage['first_event'][:10]}, after {since_day}: "
                                         "it cannot show activity before that"]
        self.record_queries(first)

    def record_queries(self, since: int) -> None:
        self.evidence["queries"] = self.ctx.audit.queries[since:]

    def _log_key(self, dn: str, account: str, attributes: dict[str, list[str]]) -> str:
        config = self.ctx.site.config.directory
        if self.key == "dn":
            return dn
        attribute = {"uid": config.uid_attribute, "rpps": config.rpps_attribute, "mail": config.mail_attribute}[self.key]
        return (attributes.get(attribute) or [account])[0]

    def inspect(self, dn: str, account: str, attributes: dict[str, list[str]]) -> Iterable[Finding]:
        if not self.params.include_locked and self.flavor.inactive(attributes, self.ctx.as_of):
            return
        created = _ldap_time((attributes.get(self.flavor.created_attribute) or [""])[0])
        if created and created > self.since:
            return  # a new account has not had the time to be dormant
        logins = [t for name in self.login_attributes for v in attributes.get(name, []) if (t := _ldap_time(v))]
        last_login = max(logins) if logins else None
        if last_login and last_login >= self.since:
            return
        if self.active is not None and self._log_key(dn, account, attributes) in self.active:
            return
        evidence = {
            "last_login": last_login.isoformat() if last_login else None,
            "login_attributes_present": bool(logins),
            "created": created.isoformat() if created else None,
            "access_log_events_in_window": 0 if self.active is not None else None,
            "window_days": self.params.days,
        }
        login = f"last login {last_login:%Y-%m-%d}" if last_login else "no login recorded"
        log = ", no access-log event" if self.active is not None else ""
        yield self.finding(account, f"dormant: {login}{log} in the last {self.params.days} days", evidence, dn)


class PasswordAgeParams(Params):
    days: int = Field(365, ge=1, description="Report a password nobody changed for this many days.")
    include_locked: bool = Field(False, description="Also report accounts already locked, disabled or expired.")


class PasswordAge(DirectoryCheck):
    """Accounts whose password nobody changed for N days (AD pwdLastSet, ppolicy pwdChangedTime, 389-DS pwdUpdateTime).

    An old password has had the time to be reused, phished or written down. An account that must
    change its password at the next login (AD ``pwdLastSet: 0``) is not reported; one whose directory
    keeps no change time is counted in the evidence, not reported.
    """

    name = "password_age"
    parameters = PasswordAgeParams

    def prepare(self) -> None:
        self.flavor = _flavor(self)
        self.since = self.ctx.as_of - timedelta(days=self.params.days)
        self.attributes = (self.flavor.password_set_attribute, *self.flavor.inactive_attributes)
        self.no_time = 0
        self.evidence["attribute"] = self.flavor.password_set_attribute

    def inspect(self, dn: str, account: str, attributes: dict[str, list[str]]) -> Iterable[Finding]:
        inactive = self.flavor.inactive(attributes, self.ctx.as_of)
        if inactive and not self.params.include_locked:
            return
        value = (attributes.get(self.flavor.password_set_attribute) or [""])[0]
        changed = _ldap_time(value)
        if changed is None:
            self.no_time += value != "0"  # AD pwdLastSet 0: a new password is already demanded
            return
        if changed >= self.since:
            return
        days = (self.ctx.as_of - changed).days
        yield self.finding(account, f"password unchanged for {days} days (since {changed:%Y-%m-%d})",
                           {"password_set": changed.isoformat(), "days": days, "inactive": inactive,
                            "attribute": self.flavor.password_set_attribute}, dn)

    def done(self, inspected: int) -> None:
        super().done(inspected)
        self.evidence["accounts_without_password_time"] = self.no_time


class UnprotectedParams(Params):
    require_max_failure: bool = Field(True, description="A lockout policy with pwdMaxFailure 0 never locks: report it.")


def _domain_of(dn: str) -> str:
    """``OU=Praticiens,DC=sante,DC=test`` → ``DC=sante,DC=test`` (where AD keeps the domain's lockout policy)."""
    return ",".join(part for part in dn.split(",") if part.strip().lower().startswith("dc="))


class Unprotected(DirectoryCheck):
    """Accounts under no password policy, or a policy without lockout (a lock would be ignored).

    Active Directory: the policy is the account's fine-grained one (``msDS-ResultantPSO``), else the
    domain's; ``lockoutThreshold`` 0 never locks an account out. (An AD disable is never ignored.)
    """

    name = "unprotected"
    parameters = UnprotectedParams

    attributes = ("pwdPolicySubentry",)

    def prepare(self) -> None:
        self.policies: dict[str, dict[str, list[str]] | None] = {}
        self.default = self.ctx.site.config.directory.default_policy_dn
        self.evidence["default_policy_dn"] = self.default
        self.ad = self.ctx.site.config.directory.flavor == "ad"
        if self.ad:
            self.attributes = ("msDS-ResultantPSO",)
            self.domain = _domain_of(self.ctx.site.config.directory.base_dn)
            self.evidence["domain"] = self.domain

    def _ad_threshold(self, dn: str, attribute: str) -> int | None:
        key = dn.lower()
        if key not in self.policies:
            self.policies[key] = self.ctx.site.directory.read(dn, [attribute])
        values = (self.policies[key] or {}).get(attribute) or []
        return int(values[0]) if values and values[0].lstrip("-").isdigit() else None

    def _inspect_ad(self, dn: str, account: str, attributes: dict[str, list[str]]) -> Iterable[Finding]:
        pso = (attributes.get("msDS-ResultantPSO") or [""])[0]
        policy, name = (pso, "msDS-LockoutThreshold") if pso else (self.domain, "lockoutThreshold")
        threshold = self._ad_threshold(policy, name)
        if threshold == 0:
            yield self.finding(account, f"{policy} never locks an account out ({name} 0): password guessing is free",
                               {"policy": policy, name: 0, "reason": "lockout threshold 0"}, dn)
        elif threshold is None:
            yield self.finding(account, f"{policy}'s {name} cannot be read: no known lockout",
                               {"policy": policy, "reason": f"{name} unreadable"}, dn)

    def _policy(self, dn: str) -> dict[str, list[str]] | None:
        key = dn.lower()
        if key not in self.policies:
            self.policies[key] = self.ctx.site.directory.read(dn, ["pwdLockout", "pwdMaxFailure"])
        return self.policies[key]

    def inspect(self, dn: str, account: str, attributes: dict[str, list[str]]) -> Iterable[Finding]:
        if self.ad:
            yield from self._inspect_ad(dn, account, attributes)
            return
        policy_dn = (attributes.get("pwdPolicySubentry") or [self.default or ""])[0]
        explicit = bool(attributes.get("pwdPolicySubentry"))
        if not policy_dn:
            yield self.finding(account, "no pwdPolicySubentry and no default_policy_dn in the site configuration: "
                                        "no known lockout, and an administrative lock may be ignored",
                               {"policy": None, "reason": "no pwdPolicySubentry and no default policy"}, dn)
            return
        policy = self._policy(policy_dn)
        evidence = {"policy": policy_dn, "policy_from": "pwdPolicySubentry" if explicit else "default_policy_dn"}
        if policy is None:
            yield self.finding(account, f"password policy {policy_dn} does not exist: no lockout applies",
                               {**evidence, "reason": "policy entry missing"}, dn)
            return
        lockout = (policy.get("pwdLockout") or ["FALSE"])[0].upper() == "TRUE"
        max_failure = int((policy.get("pwdMaxFailure") or ["0"])[0] or 0)
        if not lockout:
            yield self.finding(account, f"password policy {policy_dn} has no lockout (pwdLockout is not TRUE)",
                               {**evidence, "pwdLockout": policy.get("pwdLockout"), "reason": "no lockout"}, dn)
        elif self.params.require_max_failure and max_failure == 0:
            yield self.finding(account, f"password policy {policy_dn} never locks (pwdMaxFailure 0)",
                               {**evidence, "pwdMaxFailure": 0, "reason": "pwdMaxFailure 0"}, dn)

    def done(self, inspected: int) -> None:
        super().done(inspected)
        self.evidence["policies_read"] = {k: v for k, v in self.policies.items()}
