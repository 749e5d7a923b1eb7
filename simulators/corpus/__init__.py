"""The deterministic synthetic DICOM corpus: same seed, same datasets, same bytes, same hash.

`generate(seed)` builds 25 Part 10 objects for 4 patients in 5 studies (dates 2021-2024):

    patient  study       series (kind: transfer syntaxes)
    PG-0001  2021-03-04  CT Image, Secondary Capture, Basic Text SR
    PG-0002  2023-02-14  CR Image
    PG-0002  2023-09-09  Digital X-Ray (for presentation)
    PG-0003  2024-05-17  Ultrasound Multi-frame (6 RGB frames), Encapsulated PDF
    PG-0004  2022-11-20  MR Image

Each series holds one object in several transfer syntaxes, each a separate instance
(key "<KIND>-<syntax>", InstanceNumber 1, 2, ...) with identical pixel data or content
(CT and MR instances differ only in slice position):
Implicit VR LE ("implicit"), Explicit VR LE ("explicit"), and a compressed one that
pydicom 3 encodes offline with no plugin: RLE Lossless ("rle") for image objects,
Deflated Explicit VR LE ("deflated") for SR and PDF; the Secondary Capture also has
a deflated variant, so deflated pixel data is covered too.

Only UIDs and pixel values depend on the seed; demographics, dates and texts are fixed,
and `index()` tells query suites what to expect. Every UID the corpus makes starts with
UID_ROOT, so UIDs a device generates can be told apart from ours. RLE uses pydicom's own
encoder (not whichever plugin is installed) so the bytes do not depend on the environment.
"""

from simulators.corpus._contents import InstanceEntry, PatientEntry, SeriesEntry, StudyEntry, index
from simulators.corpus._datasets import IMPLEMENTATION_CLASS_UID, UID_ROOT
from simulators.corpus._items import DEFAULT_SEED, CorpusItem, by_key, corpus_hash, encode, generate, write_folder
from simulators.corpus._plan import SOP_CLASSES, TRANSFER_SYNTAXES

__all__ = [
    "DEFAULT_SEED",
    "IMPLEMENTATION_CLASS_UID",
    "SOP_CLASSES",
    "TRANSFER_SYNTAXES",
    "UID_ROOT",
    "CorpusItem",
    "InstanceEntry",
    "PatientEntry",
    "SeriesEntry",
    "StudyEntry",
    "by_key",
    "corpus_hash",
    "encode",
    "generate",
    "index",
    "write_folder",
]
