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

`generate(seed, corpus_size="clinical")` appends 26 objects of a clinic's sizes
(about 53 MB, 1-2 s to make), each Explicit VR LE, the CT also RLE Lossless:

    patient  study       series
    PG-0001  2024-06-11  CT512: 12 CT slices, 512x512, signed 16-bit (HU + 1024, intercept -1024), keys CT512-<v>-NN
    PG-0001  2024-01-20  DX3000: a 3000x3000 chest DX, 14 of 16 bits stored (18 MB)
    PG-0001  2023-10-02  XA: a 100-frame 512x512 8-bit angiography cine (26 MB)

XA rather than an RGB ultrasound cine: a new SOP class beside the small corpus' RGB US, and a
third of the bytes per frame, so the suites store and retrieve it well within their timeouts.
All three belong to the first patient, so the retrieve suites' patient-level C-MOVE and C-GET
carry them (study and series levels keep retrieving the small CT study).
The cine and the DX are not RLE: pydicom's pure-Python encoder took 24 s for the noisy cine (and
made it larger) and 8 s for the DX on a loaded 2-core machine, against under 2 s for all 26
objects without them, and every run's suites make the corpus again (scripts/bench_corpus.py).

Only UIDs and pixel values depend on the seed; demographics, dates and texts are fixed,
and `index()` tells query suites what to expect. Every UID the corpus makes starts with
UID_ROOT, so UIDs a device generates can be told apart from ours. RLE uses pydicom's own
encoder (not whichever plugin is installed) so the bytes do not depend on the environment.

`reidentify(items, identity_of(run_id))` gives one run its own Study, Series and SOP Instance
UIDs and PatientIDs ("PG<tag>-0001"), for devices that keep what earlier runs stored
(`[corpus] identity = "per-run"`); it returns the map back to the fixed identities too.
"""

from simulators.corpus._clinical import CT_SLICES, XA_FRAMES
from simulators.corpus._contents import InstanceEntry, PatientEntry, SeriesEntry, StudyEntry, index
from simulators.corpus._datasets import IMPLEMENTATION_CLASS_UID, UID_ROOT
from simulators.corpus._identity import (
    CORPUS_PATIENT,
    Reidentified,
    fixed_patient_id,
    identity_of,
    patient_id,
    patient_prefix,
    reidentify,
)
from simulators.corpus._items import (
    CORPUS_SIZES,
    DEFAULT_SEED,
    CorpusItem,
    by_key,
    corpus_hash,
    encode,
    generate,
    keys,
    write_folder,
)
from simulators.corpus._plan import PATIENTS, SOP_CLASSES, TRANSFER_SYNTAXES, Patient

__all__ = [
    "CORPUS_PATIENT",
    "CORPUS_SIZES",
    "CT_SLICES",
    "DEFAULT_SEED",
    "IMPLEMENTATION_CLASS_UID",
    "PATIENTS",
    "SOP_CLASSES",
    "TRANSFER_SYNTAXES",
    "UID_ROOT",
    "XA_FRAMES",
    "CorpusItem",
    "InstanceEntry",
    "Patient",
    "PatientEntry",
    "Reidentified",
    "SeriesEntry",
    "StudyEntry",
    "by_key",
    "corpus_hash",
    "encode",
    "fixed_patient_id",
    "generate",
    "identity_of",
    "index",
    "keys",
    "patient_id",
    "patient_prefix",
    "reidentify",
    "write_folder",
]
