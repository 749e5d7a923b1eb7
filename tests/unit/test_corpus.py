"""Tests for simulators.corpus: determinism, round trips, lossless compression and IOD content."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID

from simulators import corpus
from simulators.corpus import CorpusItem
from tests.conftest import require_tool

# Standard UIDs the corpus uses but did not make: SOP classes, transfer syntaxes, code schemes.
_STANDARD_PREFIX = "1.2.840.10008."


@pytest.fixture(scope="module")
def items() -> tuple[CorpusItem, ...]:
    return corpus.generate()


def _uids(ds: Dataset) -> list[tuple[str, str]]:
    """(keyword, value) of every UI element, file meta and nested sequences included."""
    found: list[tuple[str, str]] = []

    def walk(d: Dataset) -> None:
        for elem in d:
            if elem.VR == "UI":
                values = elem.value if elem.VM > 1 else [elem.value]
                found.extend((elem.keyword, str(v)) for v in values)
            elif elem.VR == "SQ":
                for child in elem.value:
                    walk(child)

    walk(ds.file_meta)
    walk(ds)
    return found


def _variants(items: tuple[CorpusItem, ...], kind: str) -> dict[str, CorpusItem]:
    return {i.key.split("-", 1)[1]: i for i in items if i.key.split("-", 1)[0] == kind}


def test_generate_is_byte_identical_between_calls(items: tuple[CorpusItem, ...]) -> None:
    again = corpus.generate()
    assert [i.key for i in again] == [i.key for i in items]
    for a, b in zip(items, again, strict=True):
        assert corpus.encode(a) == corpus.encode(b), a.key
        assert a == b  # the convenience fields (the dataset is excluded from equality)
    assert corpus.corpus_hash(again) == corpus.corpus_hash(items)


def test_hash_is_stable_in_a_fresh_process(items: tuple[CorpusItem, ...]) -> None:
    code = "from simulators import corpus; print(corpus.corpus_hash(corpus.generate(1422)))"
    # A different hash seed makes any reliance on hash() or set order show up.
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env)
    assert out.stdout.strip() == corpus.corpus_hash(items)
    assert re.fullmatch(r"[0-9a-f]{64}", out.stdout.strip())


def test_hash_ignores_item_order(items: tuple[CorpusItem, ...]) -> None:
    assert corpus.corpus_hash(reversed(items)) == corpus.corpus_hash(items)


def test_another_seed_changes_uids_pixels_and_hash(items: tuple[CorpusItem, ...]) -> None:
    other = corpus.generate(7)
    assert corpus.corpus_hash(other) != corpus.corpus_hash(items)
    mine, theirs = corpus.by_key(items), corpus.by_key(other)
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert mine[key].sop_instance_uid != theirs[key].sop_instance_uid, key
        assert mine[key].dataset.PatientName == theirs[key].dataset.PatientName, key
    assert not np.array_equal(mine["CT-explicit"].dataset.pixel_array, theirs["CT-explicit"].dataset.pixel_array)


def test_size_sets_the_image_matrix() -> None:
    small = corpus.by_key(corpus.generate(size=16))
    assert small["CT-rle"].dataset.pixel_array.shape == (16, 16)
    assert small["US-rle"].dataset.pixel_array.shape == (6, 16, 16, 3)
    with pytest.raises(ValueError, match="size"):
        corpus.generate(size=2)
    with pytest.raises(ValueError, match="seed"):
        corpus.generate(-1)


def test_keys_and_uids_are_unique(items: tuple[CorpusItem, ...]) -> None:
    assert len({i.key for i in items}) == len(items)
    assert len({i.sop_instance_uid for i in items}) == len(items)
    assert 25 <= len(items) <= 30


def test_every_uid_the_corpus_makes_is_under_the_root(items: tuple[CorpusItem, ...]) -> None:
    assert corpus.UID_ROOT.endswith(".")
    for item in items:
        uids = _uids(item.dataset)
        assert uids, item.key
        for keyword, value in uids:
            assert UID(value).is_valid, (item.key, keyword, value)
            if not value.startswith(_STANDARD_PREFIX):
                assert value.startswith(corpus.UID_ROOT), (item.key, keyword, value)
        fields = (item.study_instance_uid, item.series_instance_uid, item.sop_instance_uid)
        assert all(u.startswith(corpus.UID_ROOT) for u in fields), item.key
        assert item.dataset.file_meta.ImplementationClassUID == corpus.IMPLEMENTATION_CLASS_UID


def test_required_sop_classes_and_transfer_syntaxes_are_present(items: tuple[CorpusItem, ...]) -> None:
    ct, mr, cr, dx = (
        "1.2.840.10008.5.1.4.1.1.2",
        "1.2.840.10008.5.1.4.1.1.4",
        "1.2.840.10008.5.1.4.1.1.1",
        "1.2.840.10008.5.1.4.1.1.1.1",
    )
    us_multiframe, sc = "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.7"
    basic_text_sr, pdf = "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.104.1"
    classes = {i.sop_class_uid for i in items}
    assert {ct, mr, cr, dx, us_multiframe, sc, basic_text_sr, pdf} <= classes
    assert set(corpus.SOP_CLASSES.values()) == classes
    syntaxes = {i.transfer_syntax_uid for i in items}
    assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1.99"} == syntaxes
    # Every object kind comes in both uncompressed syntaxes and one compressed one.
    for kind in corpus.SOP_CLASSES:
        variants = _variants(items, kind)
        assert {"implicit", "explicit"} <= variants.keys(), kind
        assert variants.keys() & {"rle", "deflated"}, kind


def test_item_fields_match_the_dataset(items: tuple[CorpusItem, ...]) -> None:
    for item in items:
        ds = item.dataset
        assert (
            item.key
            == f"{item.key.split('-')[0]}-{next(v for v, ts in corpus.TRANSFER_SYNTAXES.items() if ts == item.transfer_syntax_uid)}"
        )
        assert ds.file_meta.TransferSyntaxUID == item.transfer_syntax_uid
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == item.sop_class_uid
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == item.sop_instance_uid
        assert (ds.Modality, ds.PatientID) == (item.modality, item.patient_id)
        assert (ds.StudyInstanceUID, ds.SeriesInstanceUID) == (item.study_instance_uid, item.series_instance_uid)


def test_every_item_round_trips_through_part10(items: tuple[CorpusItem, ...]) -> None:
    for item in items:
        data = corpus.encode(item)
        assert data[128:132] == b"DICM", item.key
        back = pydicom.dcmread(io.BytesIO(data))
        assert back.file_meta.TransferSyntaxUID == item.transfer_syntax_uid, item.key
        assert back.SOPInstanceUID == item.sop_instance_uid, item.key
        assert back.PatientName == item.dataset.PatientName, item.key
        # Re-encoding what was read gives the same bytes: nothing lost or reinterpreted.
        again = io.BytesIO()
        pydicom.dcmwrite(again, back, enforce_file_format=True)
        assert again.getvalue() == data, item.key
        assert back.to_json_dict() == item.dataset.to_json_dict(), item.key


def test_encode_does_not_touch_the_dataset(items: tuple[CorpusItem, ...]) -> None:
    item = corpus.by_key(items)["SR-deflated"]
    before = item.dataset.to_json_dict(), item.dataset.file_meta.to_json_dict()
    corpus.encode(item)
    assert (item.dataset.to_json_dict(), item.dataset.file_meta.to_json_dict()) == before


def test_compressed_items_decode_to_the_uncompressed_pixels(items: tuple[CorpusItem, ...]) -> None:
    compressed = [i for i in items if i.key.endswith(("-rle", "-deflated")) and "PixelData" in i.dataset]
    assert {i.key for i in compressed} >= {"CT-rle", "MR-rle", "CR-rle", "DX-rle", "US-rle", "SC-rle", "SC-deflated"}
    for item in compressed:
        reference = _variants(items, item.key.split("-")[0])["explicit"].dataset.pixel_array
        decoded = pydicom.dcmread(io.BytesIO(corpus.encode(item))).pixel_array
        assert decoded.dtype == reference.dtype, item.key
        assert np.array_equal(decoded, reference), item.key
    rle = corpus.by_key(items)["CT-rle"].dataset
    assert rle["PixelData"].is_undefined_length  # really encapsulated, not a relabelled native stream
    implicit = corpus.by_key(items)["CT-implicit"].dataset.pixel_array
    assert np.array_equal(rle.pixel_array, implicit)


def test_pixel_modules_match_the_pixel_data(items: tuple[CorpusItem, ...]) -> None:
    for item in items:
        ds = item.dataset
        if "PixelData" not in ds:
            continue
        arr = pydicom.dcmread(io.BytesIO(corpus.encode(item))).pixel_array
        frames = int(ds.get("NumberOfFrames", 1))
        expected = (ds.Rows, ds.Columns) if ds.SamplesPerPixel == 1 else (ds.Rows, ds.Columns, 3)
        assert arr.shape == ((frames, *expected) if frames > 1 else expected), item.key
        assert arr.itemsize * 8 == ds.BitsAllocated, item.key
        assert int(arr.max()) < 2**ds.BitsStored, item.key
        assert int(arr.min()) != int(arr.max()), item.key  # an image, not a blank
    us = corpus.by_key(items)["US-explicit"].dataset
    assert (us.PhotometricInterpretation, us.SamplesPerPixel, us.NumberOfFrames) == ("RGB", 3, 6)
    cine = us.pixel_array
    assert not np.array_equal(cine[0], cine[1])  # a cine loop, not one frame repeated
    assert not np.array_equal(cine[..., 0], cine[..., 1])  # colour, not grey in RGB


def test_patient_study_series_modules_are_realistic(items: tuple[CorpusItem, ...]) -> None:
    required = [
        "SpecificCharacterSet",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "StudyID",
        "StudyDescription",
        "ReferringPhysicianName",
        "SeriesInstanceUID",
        "SeriesNumber",
        "SeriesDescription",
        "Modality",
        "InstanceNumber",
        "SOPClassUID",
        "SOPInstanceUID",
    ]
    for item in items:
        ds = item.dataset
        missing = [k for k in required if k not in ds]
        assert not missing, (item.key, missing)
        assert ds.SpecificCharacterSet in ("ISO_IR 100", "ISO_IR 192", ["", "ISO 2022 IR 87"]), item.key
        assert re.fullmatch(r"\d{8}", ds.StudyDate) and re.fullmatch(r"\d{6}", ds.StudyTime), item.key
        assert ds.PatientSex in ("M", "F", "O")
    names = {str(i.dataset.PatientName) for i in items}
    assert "Müller^Jürgen" in names
    assert any(n.isupper() for n in names) and any(n != n.upper() for n in names)
    assert all("^" in n for n in names)
    # Latin-1 survives the encoding, i.e. the bytes really are ISO 8859-1.
    mueller = next(i for i in items if str(i.dataset.PatientName) == "Müller^Jürgen")
    assert "Müller^Jürgen".encode("latin-1") in corpus.encode(mueller)
    assert len({i.dataset.StudyDate for i in items}) >= 4


def test_index_groups_items_for_queries(items: tuple[CorpusItem, ...]) -> None:
    patients = corpus.index(items)
    assert 5 <= len(patients) <= 6
    assert [p.patient_id for p in patients] == sorted(p.patient_id for p in patients)
    studies = [s for p in patients for s in p.studies]
    series = [se for s in studies for se in s.series]
    instances = [i for se in series for i in se.instances]
    assert sorted(i.key for i in instances) == sorted(i.key for i in items)
    assert len({s.study_instance_uid for s in studies}) == len(studies) >= 4
    assert any(len(p.studies) > 1 for p in patients)  # a patient with history
    assert any(len(s.series) > 1 for s in studies)
    # Retrieves move several instances; only the series there for their patients' names are smaller.
    assert all(
        len(se.instances) >= 3 for p in patients if p.patient_id <= "PG-0004" for s in p.studies for se in s.series
    )
    for entry in series:
        assert [i.instance_number for i in entry.instances] == list(range(1, len(entry.instances) + 1))
    ct_study = next(s for s in studies if "CT" in s.modalities)
    assert ct_study.modalities == ("CT", "OT", "SR")
    # The index agrees with the datasets it was read from.
    by_uid = {i.sop_instance_uid: i for i in items}
    for patient in patients:
        for study in patient.studies:
            for entry in study.series:
                for inst in entry.instances:
                    ds = by_uid[inst.sop_instance_uid].dataset
                    assert (ds.PatientID, ds.StudyDate, ds.SeriesNumber) == (
                        patient.patient_id,
                        study.study_date,
                        entry.series_number,
                    )


def test_basic_text_sr_has_a_valid_content_tree(items: tuple[CorpusItem, ...]) -> None:
    for item in _variants(items, "SR").values():
        ds = pydicom.dcmread(io.BytesIO(corpus.encode(item)))
        assert ds.Modality == "SR"
        assert (ds.ValueType, ds.ContinuityOfContent) == ("CONTAINER", "SEPARATE")
        assert ds.CompletionFlag == "COMPLETE" and ds.VerificationFlag in ("VERIFIED", "UNVERIFIED")
        assert ds.ConceptNameCodeSequence[0].CodingSchemeDesignator == "LN"
        assert "ReferencedPerformedProcedureStepSequence" in ds and "PerformedProcedureCodeSequence" in ds
        assert len(ds.ContentSequence) >= 1
        for node in ds.ContentSequence:
            assert (node.RelationshipType, node.ValueType) == ("CONTAINS", "TEXT")
            code = node.ConceptNameCodeSequence[0]
            assert code.CodeValue and code.CodingSchemeDesignator and code.CodeMeaning
            assert node.TextValue
        assert any("ä" in n.TextValue for n in ds.ContentSequence)


def test_encapsulated_pdf_is_a_valid_pdf(items: tuple[CorpusItem, ...]) -> None:
    for item in _variants(items, "PDF").values():
        ds = pydicom.dcmread(io.BytesIO(corpus.encode(item)))
        assert ds.Modality == "DOC" and ds.ConversionType
        assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
        assert ds["EncapsulatedDocument"].VR == "OB"
        raw = bytes(ds.EncapsulatedDocument)
        assert len(raw) % 2 == 0
        pdf = raw[: ds.EncapsulatedDocumentLength]
        assert raw[len(pdf) :].strip(b"\0") == b""
        assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
        # The xref table points at each object, as a PDF reader would follow it.
        startxref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
        assert pdf[startxref:].startswith(b"xref")
        header, *entries = pdf[startxref:].split(b"trailer")[0].splitlines()[1:]
        first, count = map(int, header.split())
        assert entries[0] == b"0000000000 65535 f "
        assert (first, count) == (0, len(entries))
        for number, entry in enumerate(entries[1:], start=1):
            assert re.fullmatch(rb"\d{10} 00000 n ", entry), entry  # 20 bytes with the newline
            assert pdf[int(entry[:10]) :].startswith(b"%d 0 obj" % number)
        stream_len = int(re.search(rb"/Length (\d+)", pdf).group(1))  # type: ignore[union-attr]
        stream_start = pdf.index(b"stream\n") + len(b"stream\n")
        assert pdf[stream_start + stream_len :].startswith(b"\nendstream")
        assert item.patient_id.encode() in pdf


def test_write_folder_writes_readable_files(items: tuple[CorpusItem, ...], tmp_path: Path) -> None:
    paths = corpus.write_folder(items, tmp_path / "corpus")
    assert [p.name for p in paths] == [f"{i.key}.dcm" for i in items]
    for item, path in zip(items, paths, strict=True):
        assert path.read_bytes() == corpus.encode(item)
        assert pydicom.dcmread(path).SOPInstanceUID == item.sop_instance_uid


def test_dcmtk_reads_and_decodes_every_item(items: tuple[CorpusItem, ...], tmp_path: Path) -> None:
    require_tool("dcmdump", "apt-get install dcmtk")
    # A second, independent DICOM implementation: parses every file and decodes RLE and Deflate.
    for item, path in zip(items, corpus.write_folder(items, tmp_path), strict=True):
        dump = subprocess.run(["dcmdump", "-q", str(path)], capture_output=True, timeout=30)
        assert dump.returncode == 0 and not dump.stderr, (item.key, dump.stderr)
        if item.key.endswith(("-rle", "-deflated")) and "PixelData" in item.dataset:
            tool = ["dcmdrle"] if item.key.endswith("-rle") else ["dcmconv", "+te"]
            out = tmp_path / f"{item.key}.decoded"
            subprocess.run([*tool, "-q", str(path), str(out)], check=True, capture_output=True, timeout=30)
            reference = corpus.by_key(items)[item.key.split("-")[0] + "-explicit"].dataset.pixel_array
            assert np.array_equal(pydicom.dcmread(out).pixel_array, reference), item.key


def test_names_in_three_character_sets_are_encoded_as_ps3_5_shows(items: tuple[CorpusItem, ...]) -> None:
    by_patient = {str(i.dataset.PatientID): i for i in items}
    charsets = {pid: i.dataset.SpecificCharacterSet for pid, i in by_patient.items()}
    assert charsets["PG-0001"] == "ISO_IR 100"
    assert charsets["PG-0005"] == ["", "ISO 2022 IR 87"] and charsets["PG-0006"] == "ISO_IR 192"
    # PS3.5 H.3.1: each JIS X 0208 group behind ESC $ B, back to ASCII with ESC ( B.
    jis = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"
    assert jis in corpus.encode(by_patient["PG-0005"])
    assert "Wang^XiaoDong=王^小東".encode() in corpus.encode(by_patient["PG-0006"])
    for pid, name in (("PG-0005", "Yamada^Tarou=山田^太郎=やまだ^たろう"), ("PG-0006", "Wang^XiaoDong=王^小東")):
        back = pydicom.dcmread(io.BytesIO(corpus.encode(by_patient[pid])))
        assert str(back.PatientName) == name, pid
        request = back.RequestAttributesSequence[0]
        assert request.RequestedProcedureID.startswith("RP") and request.ScheduledProcedureStepID.startswith("SPS")
    # Implicit VR too: the reader must find the character set before the names.
    implicit = corpus.by_key(items)["SC_JIS-implicit"]
    assert str(pydicom.dcmread(io.BytesIO(corpus.encode(implicit))).PatientName).startswith("Yamada^Tarou=山田")
