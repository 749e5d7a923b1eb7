"""MPPS provider: Modality Performed Procedure Step N-CREATE and N-SET (PS3.4 F.7) sent to the device."""
