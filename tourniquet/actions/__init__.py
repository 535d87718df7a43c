"""Playbook actions, one module per connector namespace; importing a module registers its actions."""
