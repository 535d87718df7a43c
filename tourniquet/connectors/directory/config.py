"""Which directory a site uses and how to reach it (the site file's ``directory:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tourniquet.secrets import SecretRef

__all__ = ["DirectoryConfig"]


class DirectoryConfig(BaseModel):
    """Which directory a site uses and how to reach it."""

    model_config = ConfigDict(extra="forbid")

    flavor: Literal["openldap", "389ds", "ad"] = Field("openldap", description="How accounts are locked.")
    transport: Literal["auto", "ldap3", "libldap"] = Field(
        "auto", description="The LDAP library: ldap3 (pure Python, always installed), libldap (OpenLDAP's C library, "
                            "the 'libldap' extra: faster on big sweeps), auto (libldap when installed, else ldap3).")
    url: str = Field(description="ldap://host:port or ldaps://host:port")
    start_tls: bool = Field(False, description="Upgrade ldap:// with StartTLS.")
    allow_plaintext: bool = Field(
        False, description="Allow ldap:// without StartTLS. Only for a loopback demo or test directory."
    )
    ca_file: str | None = Field(None, description="CA bundle that signed the server certificate.")
    verify_certificates: bool = Field(True, description="Check the server certificate (keep it on).")
    bind_dn: str = Field(description="Service identity with rights to read and modify accounts.")
    bind_password: SecretRef = Field(description="Where the bind password lives.")
    base_dn: str = Field(description="Subtree holding the practitioner accounts.")
    user_filter: str = Field("(objectClass=inetOrgPerson)", description="What an account entry looks like.")
    uid_attribute: str = Field("uid", description="Attribute holding the login (sAMAccountName on AD).")
    rpps_attribute: str = Field("employeeNumber", description="Attribute holding the 11-digit RPPS number.")
    mail_attribute: str = Field("mail", description="Attribute holding the e-mail address an alert may name.")
    default_policy_dn: str | None = Field(
        None, description="OpenLDAP: the ppolicy default (olcPPolicyDefault), for entries without pwdPolicySubentry."
    )
    groups_base_dn: str | None = Field(None, description="Where groups live (default: the parent of base_dn).")
    group_filter: str = Field("(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))",
                              description="What a group entry looks like.")
    group_member_attribute: str = Field("member", description="member (groupOfNames, AD) or uniqueMember.")
    timeout: float = Field(10.0, gt=0, description="Seconds for connecting and for each operation.")
    page_size: int = Field(500, ge=1, le=5000, description="Entries per page of a paged search (hygiene sweeps).")
