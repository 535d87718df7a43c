"""``tickets.*`` actions (none yet: they come with the tickets issue)."""
