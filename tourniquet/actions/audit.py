"""``audit.*`` actions (none yet: they come with the audit issue)."""
