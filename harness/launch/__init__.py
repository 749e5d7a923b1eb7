"""Launching: one protocol that starts a process or a container, waits until it is ready, keeps its log, stops it."""
