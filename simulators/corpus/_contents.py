"""What a set of corpus items holds, as patients -> studies -> series -> instances: what query suites expect to match."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from simulators.corpus._items import CorpusItem

__all__ = ["InstanceEntry", "PatientEntry", "SeriesEntry", "StudyEntry", "index"]


@dataclass(frozen=True)
class InstanceEntry:
    """One instance in the corpus index."""

    key: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    instance_number: int


@dataclass(frozen=True)
class SeriesEntry:
    """One series in the corpus index, instances by InstanceNumber."""

    series_instance_uid: str
    modality: str
    series_number: int
    series_description: str
    instances: tuple[InstanceEntry, ...]


@dataclass(frozen=True)
class StudyEntry:
    """One study in the corpus index, series by SeriesNumber."""

    study_instance_uid: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    study_description: str
    referring_physician_name: str
    series: tuple[SeriesEntry, ...]

    @property
    def modalities(self) -> tuple[str, ...]:
        """ModalitiesInStudy as a sorted tuple."""
        return tuple(sorted({s.modality for s in self.series}))

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.series)


@dataclass(frozen=True)
class PatientEntry:
    """One patient in the corpus index, studies by StudyDate."""

    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    studies: tuple[StudyEntry, ...]


def index(items: Iterable[CorpusItem]) -> tuple[PatientEntry, ...]:
    """What the items hold as patients -> studies -> series -> instances, read from their datasets.

    Sorted by PatientID, StudyDate, SeriesNumber and InstanceNumber, so query suites can
    count expected matches at every Q/R level.
    """
    tree: dict[str, dict[str, dict[str, list[CorpusItem]]]] = {}
    for item in items:
        by_study = tree.setdefault(item.patient_id, {})
        by_series = by_study.setdefault(item.study_instance_uid, {})
        by_series.setdefault(item.series_instance_uid, []).append(item)
    return tuple(_patient_entry(studies) for _, studies in sorted(tree.items()))


def _patient_entry(studies: Mapping[str, Mapping[str, list[CorpusItem]]]) -> PatientEntry:
    entries = sorted((_study_entry(s) for s in studies.values()), key=lambda e: (e.study_date, e.study_time))
    ds = next(iter(next(iter(studies.values())).values()))[0].dataset
    return PatientEntry(
        patient_id=str(ds.PatientID),
        patient_name=str(ds.PatientName),
        patient_birth_date=str(ds.PatientBirthDate),
        patient_sex=str(ds.PatientSex),
        studies=tuple(entries),
    )


def _study_entry(series: Mapping[str, list[CorpusItem]]) -> StudyEntry:
    entries = sorted((_series_entry(s) for s in series.values()), key=lambda e: e.series_number)
    ds = next(iter(series.values()))[0].dataset
    return StudyEntry(
        study_instance_uid=str(ds.StudyInstanceUID),
        study_date=str(ds.StudyDate),
        study_time=str(ds.StudyTime),
        accession_number=str(ds.AccessionNumber),
        study_id=str(ds.StudyID),
        study_description=str(ds.StudyDescription),
        referring_physician_name=str(ds.ReferringPhysicianName),
        series=tuple(entries),
    )


def _series_entry(items: list[CorpusItem]) -> SeriesEntry:
    ds = items[0].dataset
    instances = sorted(
        (
            InstanceEntry(
                i.key, i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, int(i.dataset.InstanceNumber)
            )
            for i in items
        ),
        key=lambda e: e.instance_number,
    )
    return SeriesEntry(
        series_instance_uid=str(ds.SeriesInstanceUID),
        modality=str(ds.Modality),
        series_number=int(ds.SeriesNumber),
        series_description=str(ds.SeriesDescription),
        instances=tuple(instances),
    )
