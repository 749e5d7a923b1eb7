"""Functional suite: query."""
