"""patchgate's harness: run DICOM suites before and after a patch, compare, and give a verdict."""

__version__ = "0.1.0"
