"""A scripted modality for the workflow suites' own tests: RAD-5/6/8/7/10 done by `command` actions against the simulators.

    python tests/workflow_device.py serve --state DIR --ae-title AE --port P --ris AE@HOST:PORT \
        --pacs AE@HOST:PORT --date YYYYMMDD --seed N [--drop-accession]
    python tests/workflow_device.py act --state DIR ACTION [SPS_ID] [--instances JSON]

`serve` is the device process: it answers C-ECHO (readiness), takes C-STOREs (a router's input) and
commitment reports on a new association, and writes the run's settings into DIR; each `act` is one
device action (query_worklist, start_procedure, acquire, complete, discontinue, commit, scenario,
forward), keeping what
the device knows (its worklist, MPPS UIDs, what it sent) in DIR between actions. Behaviour flags
stand for patched variants: `--drop-accession` leaves Accession Number out of the images.
It uses the simulators' SCU (simulators.modality), as a real modality would use its DICOM stack.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, generate_uid
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

from simulators._net import VERIFICATION
from simulators.commitment import PUSH_MODEL
from simulators.corpus import by_key, generate
from simulators.endpoint import Endpoint
from simulators.modality import Modality
from simulators.workflow_scu import MPPS, PerformedSeries, mpps_final, mpps_in_progress

IMAGES_PER_SERIES = 2
_PATIENT = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
_REQUEST = ("RequestedProcedureID", "RequestedProcedureDescription")
_SPS = ("ScheduledProcedureStepID", "ScheduledProcedureStepDescription", "ScheduledProtocolCodeSequence")


def acquired_image(
    base: Dataset,
    item: Dataset,
    *,
    series_uid: str,
    instance_uid: str,
    number: int,
    mpps: dict[str, str] | None = None,
    drop_accession: bool = False,
) -> Dataset:
    """`base` (a corpus object) re-made for worklist `item`: patient, study and request copied in (RAD TF-2x A.1-1)."""
    ds = copy.deepcopy(base)
    sps = item.ScheduledProcedureStepSequence[0]
    if "SpecificCharacterSet" in item:
        ds.SpecificCharacterSet = item.SpecificCharacterSet
    for keyword in (*_PATIENT, "StudyInstanceUID", "AccessionNumber", "ReferencedStudySequence"):
        if keyword in item:
            ds[keyword] = copy.deepcopy(item[keyword])
    if drop_accession:
        del ds.AccessionNumber
    request = Dataset()
    for keyword in _REQUEST:
        if keyword in item:
            request[keyword] = copy.deepcopy(item[keyword])
    for keyword in _SPS:
        if keyword in sps:
            request[keyword] = copy.deepcopy(sps[keyword])
    ds.RequestAttributesSequence = DicomSequence([request])
    ds.ProcedureCodeSequence = copy.deepcopy(item.get("RequestedProcedureCodeSequence", DicomSequence()))
    ds.Modality = sps.Modality
    if mpps is not None:
        ref = Dataset()
        ref.ReferencedSOPClassUID = MPPS
        ref.ReferencedSOPInstanceUID = mpps["uid"]
        ds.ReferencedPerformedProcedureStepSequence = DicomSequence([ref])
        ds.PerformedProcedureStepID = mpps["pps_id"]
        ds.PerformedProcedureStepStartDate = mpps["start_date"]
        ds.PerformedProcedureStepStartTime = mpps["start_time"]
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = instance_uid
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    now = dt.datetime.now(dt.UTC)
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.file_meta = copy.deepcopy(base.file_meta)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(instance_uid)
    return ds


# -- the device's memory between actions -----------------------------------------------------------


class State:
    """The folder the device keeps its settings, worklist and procedures in."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config: dict[str, Any] = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.modality = Modality(self.config["ae_title"])

    def endpoint(self, name: str) -> Endpoint:
        ae, _, address = self.config[name].partition("@")
        host, _, port = address.rpartition(":")
        return Endpoint(ae, host, int(port))

    def worklist(self) -> list[Dataset]:
        path = self.folder / "worklist.json"
        if not path.exists():
            query_worklist(self)
        return [Dataset.from_json(d) for d in json.loads(path.read_text(encoding="utf-8"))]

    def item(self, sps_id: str) -> Dataset:
        for ds in self.worklist():
            if str(ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID) == sps_id:
                return ds
        raise SystemExit(f"{sps_id} is not in the worklist the device got")

    def procedure(self, sps_id: str) -> dict[str, Any]:
        path = self.folder / f"{sps_id}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def save(self, sps_id: str, procedure: dict[str, Any]) -> None:
        (self.folder / f"{sps_id}.json").write_text(json.dumps(procedure), encoding="utf-8")


def _now() -> tuple[str, str]:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def query_worklist(state: State) -> None:
    """RAD-5: a broad query, as at the console: this station, today."""
    query = Dataset()
    for keyword in ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex"):
        setattr(query, keyword, "")
    for keyword in ("AccessionNumber", "StudyInstanceUID", "RequestedProcedureID", "RequestedProcedureDescription"):
        setattr(query, keyword, "")
    query.ReferencedStudySequence = DicomSequence()
    query.RequestedProcedureCodeSequence = DicomSequence()
    sps = Dataset()
    sps.ScheduledStationAETitle = state.config["ae_title"]
    sps.ScheduledProcedureStepStartDate = state.config["date"]
    sps.ScheduledProcedureStepStartTime = ""
    sps.Modality = ""
    sps.ScheduledProcedureStepID = ""
    sps.ScheduledProcedureStepDescription = ""
    sps.ScheduledProtocolCodeSequence = DicomSequence()
    query.ScheduledProcedureStepSequence = DicomSequence([sps])
    result = state.modality.worklist(state.endpoint("ris"), query)
    if result.status != 0x0000:
        raise SystemExit(f"worklist query failed: {result.summary()}")
    answers = [m.to_json_dict() for m in result.matches]
    (state.folder / "worklist.json").write_text(json.dumps(answers), encoding="utf-8")
    print(f"{len(answers)} worklist items")


def start_procedure(state: State, sps_id: str) -> None:
    """RAD-6: MPPS N-CREATE IN PROGRESS, with a UID of the device's making."""
    item = state.item(sps_id)
    start_date, start_time = _now()
    uid = generate_uid()
    pps_id = f"PPS{sps_id[-4:]}"  # the device numbers its steps by the scheduled one: the same in every run
    attrs = mpps_in_progress(
        item, station_ae=state.config["ae_title"], pps_id=pps_id, start_date=start_date, start_time=start_time
    )
    result = state.modality.mpps_create(state.endpoint("ris"), uid, attrs)
    if result.status != 0x0000:
        raise SystemExit(f"N-CREATE failed: {result.summary()}")
    procedure = state.procedure(sps_id)
    procedure["mpps"] = {"uid": uid, "pps_id": pps_id, "start_date": start_date, "start_time": start_time}
    state.save(sps_id, procedure)


def acquire(state: State, sps_id: str) -> None:
    """RAD-8: a series of IMAGES_PER_SERIES objects made from the corpus, C-STOREd to the PACS."""
    item = state.item(sps_id)
    procedure = state.procedure(sps_id)
    corpus = by_key(generate(int(state.config["seed"])))
    modality = str(item.ScheduledProcedureStepSequence[0].Modality)
    base = corpus.get(f"{modality}-explicit", corpus["SC-explicit"]).dataset
    series_uid = generate_uid()
    folder = state.folder / sps_id
    folder.mkdir(exist_ok=True)
    paths = []
    for number in range(1, IMAGES_PER_SERIES + 1):
        ds = acquired_image(
            base,
            item,
            series_uid=series_uid,
            instance_uid=generate_uid(),
            number=number,
            mpps=procedure.get("mpps"),
            drop_accession=bool(state.config.get("drop_accession")),
        )
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    result = state.modality.store(state.endpoint("pacs"), paths)
    if not result.accepted or any(i.status != 0x0000 for i in result.instances):
        raise SystemExit(f"C-STORE failed: {result.summary()}")
    procedure["series_uid"] = series_uid
    procedure["sent"] = [[i.sop_class_uid, i.sop_instance_uid] for i in result.instances]
    state.save(sps_id, procedure)


def _end(state: State, sps_id: str, how: str) -> None:
    """RAD-7: the final N-SET, listing the series made (one empty series when none was: PS3.4 F.7.2-1 wants an item)."""
    procedure = state.procedure(sps_id)
    if "mpps" not in procedure:
        raise SystemExit(f"{sps_id}: no procedure step was started")
    sent = [(str(c), str(i)) for c, i in procedure.get("sent", [])]
    pacs = state.endpoint("pacs").ae_title
    series = PerformedSeries(procedure.get("series_uid") or generate_uid(), tuple(sent), retrieve_ae_title=pacs)
    end_date, end_time = _now()
    changes = mpps_final(how, end_date=end_date, end_time=end_time, series=[series])
    result = state.modality.mpps_set(state.endpoint("ris"), procedure["mpps"]["uid"], changes)
    if result.status != 0x0000:
        raise SystemExit(f"N-SET {how} failed: {result.summary()}")


def commit(state: State, sps_id: str) -> None:
    """RAD-10: commitment of what the device sent; on a failure report, resend those objects and ask again."""
    procedure = state.procedure(sps_id)
    refs = [(str(c), str(i)) for c, i in procedure.get("sent", [])]
    if not refs:
        raise SystemExit(f"{sps_id}: nothing was sent, nothing to commit")
    pacs = state.endpoint("pacs")
    result = state.modality.commit(pacs, generate_uid(), refs, keep_open=5.0)
    if result.action_status != 0x0000:
        raise SystemExit(f"N-ACTION failed: {result.summary()}")
    failed = [(c, i) for c, i, _ in result.report.failed] if result.report is not None else []
    if failed and not state.config.get("ignore_failure"):
        folder = state.folder / sps_id
        state.modality.store(pacs, [folder / f"{i}.dcm" for _, i in failed])
        again = state.modality.commit(pacs, generate_uid(), failed, keep_open=5.0)
        print(f"resent {len(failed)}, asked again: {again.summary()['action_status']}")


def scenario(state: State, sps_id: str) -> None:
    query_worklist(state)
    start_procedure(state, sps_id)
    acquire(state, sps_id)
    _end(state, sps_id, "COMPLETED")
    commit(state, sps_id)


# -- command line ------------------------------------------------------------------------------------


def _device(ae_title: str, received: Path) -> tuple[AE, list[tuple[Any, Any]]]:
    """C-ECHO (readiness), C-STORE of anything into `received` (a router's input), reports on a new association."""
    ae = AE(ae_title=ae_title)
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(PUSH_MODEL, scu_role=False, scp_role=True)  # the PACS reports in the SCP role
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    received.mkdir(parents=True, exist_ok=True)

    def on_store(event: Any) -> int:
        path = received / f"{event.request.AffectedSOPInstanceUID}.dcm"
        path.write_bytes(event.encoded_dataset())
        return 0x0000

    return ae, [(evt.EVT_C_STORE, on_store), (evt.EVT_N_EVENT_REPORT, lambda event: (0x0000, None))]


def serve(args: argparse.Namespace) -> int:
    """The device process: settings into the state folder, then C-ECHO, C-STORE and commitment reports until SIGTERM."""
    folder = Path(args.state)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "ae_title": args.ae_title,
        "ris": args.ris,
        "pacs": args.pacs,
        "date": args.date,
        "seed": args.seed,
        "drop_accession": args.drop_accession,
        "ignore_failure": args.ignore_failure,
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ae, handlers = _device(args.ae_title, folder / "received")
    server = ae.start_server(("127.0.0.1", args.port), block=False, evt_handlers=handlers)
    print(f"listening on {args.port}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.shutdown()
    return 0


def forward(state: State, study_uid: str) -> None:
    """A router's forward: the objects of `study_uid` it received, C-STOREd to the PACS as they came."""
    paths = []
    for path in sorted((state.folder / "received").glob("*.dcm")):
        if str(dcmread(path, stop_before_pixels=True).get("StudyInstanceUID", "")) == study_uid:
            paths.append(path)
    if not paths:
        raise SystemExit(f"nothing received of study {study_uid}")
    result = state.modality.store(state.endpoint("pacs"), paths)
    if not result.accepted or any(i.status != 0x0000 for i in result.instances):
        raise SystemExit(f"C-STORE failed: {result.summary()}")


ACTIONS = {
    "start_procedure": start_procedure,
    "acquire": acquire,
    "complete": lambda state, sps_id: _end(state, sps_id, "COMPLETED"),
    "discontinue": lambda state, sps_id: _end(state, sps_id, "DISCONTINUED"),
    "commit": commit,
    "scenario": scenario,
    "forward": forward,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workflow_device", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve")
    run.add_argument("--state", required=True)
    run.add_argument("--ae-title", required=True)
    run.add_argument("--port", type=int, required=True)
    run.add_argument("--ris", required=True, help="AE@HOST:PORT")
    run.add_argument("--pacs", required=True, help="AE@HOST:PORT")
    run.add_argument("--date", required=True)
    run.add_argument("--seed", type=int, required=True)
    run.add_argument("--drop-accession", action="store_true")
    run.add_argument("--ignore-failure", action="store_true")
    act = sub.add_parser("act")
    act.add_argument("--state", required=True)
    act.add_argument("action", choices=("query_worklist", *ACTIONS))
    act.add_argument("sps_id", nargs="?", default="", help="the item's SPS ID (forward: the study's UID)")
    act.add_argument("--instances", default="", help="what the PACS received (this device commits what it sent)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    state = State(Path(args.state))
    if args.action == "query_worklist":
        query_worklist(state)
    else:
        ACTIONS[args.action](state, args.sps_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
