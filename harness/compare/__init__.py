"""Comparison of run records: normalise, diff, mask noise, apply the expected-change policy."""
