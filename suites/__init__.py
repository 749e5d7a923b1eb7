"""patchgate's functional DICOM suites, grouped by service; run by `patchgate run` against one device variant."""
