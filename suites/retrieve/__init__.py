"""Functional suite: retrieve."""
