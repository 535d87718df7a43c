"""``identity.*`` actions (none yet: they come with the identity issue)."""
