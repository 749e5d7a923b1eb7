"""Functional suite: verification."""
