"""Worklist provider: Modality Worklist C-FIND (PS3.4 K.6) against the worklist the harness seeded the device with."""
