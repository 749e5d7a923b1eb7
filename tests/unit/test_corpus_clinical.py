"""Tests for the clinical-size corpus: the objects' shapes and values, determinism, IOD conformance, and the size's way to the suites."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from harness.compare.belonging import mismatches
from harness.context import SuiteContext
from harness.errors import ProfileError
from harness.model import CorpusInfo, Endpoint
from harness.profile import load_profile, parse_profile
from harness.profile._specs import CORPUS_SIZES as PROFILE_CORPUS_SIZES
from harness.rundir import RunDir
from simulators import corpus
from simulators.corpus import CorpusItem
from tests.factories import make_run

ROOT = Path(__file__).resolve().parents[2]
SEED = 1422


@pytest.fixture(scope="module")
def clinical() -> tuple[CorpusItem, ...]:
    return corpus.generate(SEED, corpus_size="clinical")


@pytest.fixture(scope="module")
def extra(clinical: tuple[CorpusItem, ...]) -> dict[str, CorpusItem]:
    """The clinical-size items alone, by key."""
    small = set(corpus.keys("small"))
    return {i.key: i for i in clinical if i.key not in small}


def _sha(item: CorpusItem) -> str:
    return hashlib.sha256(corpus.encode(item)).hexdigest()


def test_small_is_the_default_and_the_first_part_of_clinical_byte_for_byte(clinical: tuple[CorpusItem, ...]) -> None:
    small = corpus.generate(SEED)
    assert [i.key for i in corpus.generate(SEED, corpus_size="small")] == [i.key for i in small]
    assert [_sha(i) for i in clinical[: len(small)]] == [_sha(i) for i in small]
    assert corpus.corpus_hash(clinical) != corpus.corpus_hash(small)


def test_keys_are_known_without_making_the_corpus(clinical: tuple[CorpusItem, ...]) -> None:
    assert corpus.keys() == [i.key for i in corpus.generate(SEED)]
    assert corpus.keys("clinical") == [i.key for i in clinical]
    assert len(clinical) - len(corpus.keys()) == 2 * corpus.CT_SLICES + 2
    assert len({i.sop_instance_uid for i in clinical}) == len(clinical)


@pytest.mark.parametrize("call", [lambda: corpus.generate(corpus_size="huge"), lambda: corpus.keys("Clinical")])
def test_an_unknown_size_names_the_valid_ones(call: object) -> None:
    with pytest.raises(ValueError, match="corpus size must be one of small, clinical"):
        call()  # type: ignore[operator]


def test_ct_stack_is_512_signed_16_bit_in_hounsfield_units(extra: dict[str, CorpusItem]) -> None:
    for variant in ("explicit", "rle"):
        stack = [extra[f"CT512-{variant}-{n:02d}"] for n in range(1, corpus.CT_SLICES + 1)]
        assert len({i.series_instance_uid for i in stack}) == 1
        assert {i.transfer_syntax_uid for i in stack} == {
            ExplicitVRLittleEndian if variant == "explicit" else RLELossless
        }
        z = [float(i.dataset.ImagePositionPatient[2]) for i in stack]
        assert z == sorted(z, reverse=True) and np.allclose(np.diff(z), -5.0)
        assert [int(i.dataset.InstanceNumber) for i in stack] == list(range(1, corpus.CT_SLICES + 1))
    ds = pydicom.dcmread(io.BytesIO(corpus.encode(extra["CT512-explicit-06"])))
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (512, 512, 16, 16, 1)
    assert (ds.RescaleIntercept, ds.RescaleSlope, ds.PixelPaddingValue) == (-1024, 1, -2000)
    stored = ds.pixel_array
    assert stored.dtype == np.int16 and stored.shape == (512, 512)
    assert stored.min() == -2000  # padding outside the reconstruction circle: negative stored values
    hu = stored.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    inside = stored != -2000

    def median_at(x: float, y: float) -> float:
        """Median HU of a 7x7 patch at (x, y) in -1..1 image coordinates (x to the right, y down)."""
        r, c = round((y + 1) / 2 * 511), round((x + 1) / 2 * 511)
        return float(np.median(hu[r - 3 : r + 4, c - 3 : c + 4]))

    assert -1030 < median_at(0.0, 0.8) < -970  # air around the body, inside the field of view
    assert -880 < median_at(0.36, -0.02) < -820  # a lung
    assert 20 < median_at(0.0, -0.45) < 60  # soft tissue
    assert 220 < median_at(-0.08, 0.18) < 280  # the contrast-filled aorta
    assert 650 < median_at(0.0, 0.445) < 750  # vertebral body
    assert hu[inside].max() <= 3071 and hu[inside].min() >= -1024


def test_ct_rle_decodes_to_the_explicit_pixels_and_slices_differ(extra: dict[str, CorpusItem]) -> None:
    for n in (1, corpus.CT_SLICES):
        explicit = extra[f"CT512-explicit-{n:02d}"].dataset.pixel_array
        rle = pydicom.dcmread(io.BytesIO(corpus.encode(extra[f"CT512-rle-{n:02d}"]))).pixel_array
        assert np.array_equal(explicit, rle), n
    first, last = extra["CT512-explicit-01"], extra["CT512-explicit-12"]
    assert not np.array_equal(first.dataset.pixel_array, last.dataset.pixel_array)


def test_xa_is_a_100_frame_8_bit_cine_the_contrast_fills(extra: dict[str, CorpusItem]) -> None:
    xa = extra["XA-explicit"]
    assert xa.sop_class_uid == "1.2.840.10008.5.1.4.1.1.12.1" and xa.modality == "XA"
    ds = pydicom.dcmread(io.BytesIO(corpus.encode(xa)))
    assert int(ds.NumberOfFrames) == corpus.XA_FRAMES >= 100
    assert ds.FrameIncrementPointer == 0x00181063 and float(ds.FrameTime) > 0
    frames = ds.pixel_array
    assert frames.shape == (corpus.XA_FRAMES, 512, 512) and frames.dtype == np.uint8
    assert len(ds.PixelData) == corpus.XA_FRAMES * 512 * 512
    # The bolus: later frames are darker where the vessels fill.
    assert frames[-1].mean() < frames[0].mean() - 1.0


def test_dx_is_3000_square_with_14_of_16_bits(extra: dict[str, CorpusItem]) -> None:
    dx = extra["DX3000-explicit"]
    ds = dx.dataset
    assert dx.sop_class_uid == corpus.SOP_CLASSES["DX"]
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (3000, 3000, 16, 14, 13)
    pixels = ds.pixel_array
    assert pixels.dtype == np.uint16 and pixels.shape == (3000, 3000)
    assert len(ds.PixelData) == 18_000_000
    assert pixels.max() < 2**14 and pixels.std() > 1000  # a real range, not a flat field


def test_clinical_objects_belong_to_the_first_patient_in_studies_of_their_own(
    clinical: tuple[CorpusItem, ...], extra: dict[str, CorpusItem]
) -> None:
    first = clinical[0].patient_id
    assert {i.patient_id for i in extra.values()} == {first}
    small_studies = {i.study_instance_uid for i in clinical[: len(corpus.keys())]}
    assert not small_studies & {i.study_instance_uid for i in extra.values()}
    patient = next(p for p in corpus.index(clinical) if p.patient_id == first)
    assert len(patient.studies) == 4


def test_same_seed_same_bytes_another_seed_other_uids_and_pixels(extra: dict[str, CorpusItem]) -> None:
    again = {i.key: i for i in corpus.generate(SEED, corpus_size="clinical")}
    other = {i.key: i for i in corpus.generate(7, corpus_size="clinical")}
    for key, item in extra.items():
        assert _sha(again[key]) == _sha(item), key
        assert other[key].sop_instance_uid != item.sop_instance_uid, key
    for key in ("CT512-explicit-01", "XA-explicit", "DX3000-explicit"):
        assert other[key].dataset.PixelData != extra[key].dataset.PixelData, key


def test_clinical_objects_pass_dciodvfy(extra: dict[str, CorpusItem]) -> None:
    from simulators.iod import IodToolMissing, validate

    for key in ("CT512-explicit-01", "CT512-rle-12", "XA-explicit", "DX3000-explicit"):
        item = extra[key]
        data = corpus.encode(item)
        meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
        body = data[128 + 4 + 12 + meta.FileMetaInformationGroupLength :]  # preamble, DICM, group length element
        try:
            report = validate(body, item.transfer_syntax_uid, item.sop_class_uid, item.sop_instance_uid)
        except IodToolMissing as exc:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{exc} (CI=true: a missing tool is a failure, not a skip)")
            pytest.skip(str(exc))
        assert report.errors == () and report.warnings == (), (key, report)


# -- the size's way from the profile to the suites, the manifest and compare ----------------------------------


def test_profile_corpus_size_defaults_to_small_and_takes_clinical() -> None:
    base = (ROOT / "harness" / "data" / "reference.toml").read_text(encoding="utf-8").split("\n[expect]")[0]
    assert parse_profile(base, "/tmp/p.toml").corpus_size == "small"
    assert parse_profile(base + '\n[corpus]\nsize = "clinical"\n', "/tmp/p.toml").corpus_size == "clinical"
    assert load_profile(ROOT / "devices" / "reference" / "clinical.toml").corpus_size == "clinical"
    assert PROFILE_CORPUS_SIZES == corpus.CORPUS_SIZES


def test_an_unknown_profile_corpus_size_names_file_line_and_the_valid_values() -> None:
    text = '[device]\nname = "d"\nae_title = "D"\n[corpus]\nseed = 3\nsize = "large"\n'
    with pytest.raises(ProfileError) as info:
        parse_profile(text, "/tmp/dev.toml")
    line = info.value.one_line()
    assert "/tmp/dev.toml:6" in line and "corpus.size" in line and "'large'" in line, line
    assert "clinical, small" in line, line


def test_the_suite_context_carries_the_size_through_endpoints_json(tmp_path: Path) -> None:
    endpoint = Endpoint("DEV", "127.0.0.1", 11112)
    context = SuiteContext(
        run_dir=str(tmp_path),
        device=endpoint,
        pacs=endpoint,
        pacs_storage=str(tmp_path / "pacs"),
        modality_ae_title="PGMODALITY",
        services=("store",),
        corpus_seed=5,
        corpus_size="clinical",
        corpus_sha256="ab" * 32,
    )
    run = RunDir(tmp_path)
    run.write_context(context)
    assert (run.read_context().corpus_size, run.read_context().corpus_sha256) == ("clinical", "ab" * 32)
    # An endpoints.json from before sizes (a context written by older code) is a small corpus.
    legacy = {k: v for k, v in context.__dict__.items() if k not in ("corpus_size", "corpus_sha256")}
    legacy["device"] = legacy["pacs"] = {"ae_title": "DEV", "host": "127.0.0.1", "port": 11112}
    legacy["services"] = ["store"]
    old = SuiteContext.from_json(legacy, str(tmp_path))
    assert (old.corpus_size, old.corpus_sha256) == ("small", "")


def test_corpus_info_records_the_size_and_an_old_manifest_reads_as_small() -> None:
    info = CorpusInfo(seed=1, sha256="a" * 64, uid_root="1.2.", items=54, size="clinical")
    assert CorpusInfo.from_json(info.__dict__) == info
    legacy = {k: v for k, v in info.__dict__.items() if k != "size"}
    assert CorpusInfo.from_json(legacy).size == "small"


def test_a_clinical_run_does_not_compare_with_a_small_one() -> None:
    small = CorpusInfo(seed=7, sha256="07" * 32, uid_root="1.2.", items=28)
    clinical = CorpusInfo(seed=7, sha256="07" * 32, uid_root="1.2.", items=28, size="clinical")  # even same bytes
    baselines = [make_run([], "baseline", n, corpus=small) for n in (1, 2)]
    candidate = make_run([], "candidate", 1, corpus=clinical)
    lines = mismatches(baselines, candidate)
    assert any(
        line.startswith("corpus differs: ") and "used seed 7, size 'clinical' (sha256 070707070707)" in line
        for line in lines
    ), lines
    assert mismatches(baselines, make_run([], "candidate", 1, corpus=small)) == ()


def test_every_uid_the_clinical_objects_make_is_under_the_root(extra: dict[str, CorpusItem]) -> None:
    for key, item in extra.items():
        ds = item.dataset
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            assert str(ds[keyword].value).startswith(corpus.UID_ROOT), (key, keyword)
        assert ds.file_meta.MediaStorageSOPInstanceUID == item.sop_instance_uid, key


def test_the_runner_makes_a_clinical_corpus_once_per_process() -> None:
    from harness.runner import corpus_info

    info = corpus_info(SEED, "clinical")
    assert (info.size, info.items, info.seed) == ("clinical", len(corpus.keys("clinical")), SEED)
    assert corpus_info(SEED, "clinical") is info  # the concurrent runs of a validation share it
    assert corpus_info(SEED).size == "small" and corpus_info(SEED).sha256 != info.sha256
