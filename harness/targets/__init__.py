"""Target backends that start a device variant and tell where it listens."""
