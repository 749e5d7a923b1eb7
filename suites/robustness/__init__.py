"""Robustness suite: the seeded corpus of malformed input, one case per input (docs/design/load-and-attack.md 8, 9)."""
