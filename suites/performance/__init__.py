"""Performance suite: timed DICOM operations in the turns the harness grants (docs/design/load-and-attack.md 5)."""
