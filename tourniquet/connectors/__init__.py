"""One module per outside system. Flows and actions never speak LDAP or HTTP themselves."""
