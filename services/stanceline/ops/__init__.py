"""Operator work (migrate, publish, replay, rebuild, dead letters, status), called by the CLI."""
