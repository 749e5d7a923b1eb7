"""Functional suite: storage."""
