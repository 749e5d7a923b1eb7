"""Functional suite: access control (who may use which service)."""
