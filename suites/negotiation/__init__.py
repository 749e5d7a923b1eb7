"""Functional suite: association negotiation (presentation contexts, A-ASSOCIATE-AC and -RJ fields)."""
