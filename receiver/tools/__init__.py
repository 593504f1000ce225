"""Operator and test tooling behind the CLI: export, replay, simulate, prune, erase,
backup."""
