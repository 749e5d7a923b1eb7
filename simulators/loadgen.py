"""Timed blocks of DICOM operations for the performance phase: each returns a `Block`, one samples.jsonl line.

A block opens its association(s) at its start and releases them at its end: an open pynetdicom
association polls every millisecond (its reactor and DUL threads) and would load the machine
during another run's turn (docs/design/load-and-attack.md 5.1). In-process intervals are timed
with `time.perf_counter_ns()` around the pynetdicom call; `time.time_ns()` only where another
process's clock is involved (C-MOVE: the destination's arrival log, simulators._arrivals).

`Block` fields: `values`, seconds, one per sample, in the order measured (a failed operation's
value is kept); `ops` = len(values); `failed` = operations refused (a Failure or Cancel
status), unanswered, or not made because no association came up; `statuses` counts final
DIMSE statuses by hex text ("0x0000"), "none" for no status at all, and for association
set-up the A-ASSOCIATE outcome ("accepted", "rejected", "none"); `images` and `bytes` what was
stored or retrieved successfully.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.presentation import PresentationContext, build_context

from simulators._arrivals import Arrival, c_stores, read_arrivals
from simulators._net import qr_sop_class, status_hex
from simulators.corpus import UID_ROOT
from simulators.endpoint import JSON, Endpoint
from simulators.modality import Modality, Model
from simulators.session import Session, get_contexts
from simulators.status import category

__all__ = [
    "Block",
    "Op",
    "association_block",
    "echo_op",
    "find_op",
    "first_arrival_seconds",
    "fresh_study",
    "joined",
    "latency_block",
    "retrieve_block",
    "store_contexts",
    "study_block",
    "workflow_block",
]

# An operation on an open session; returns the final DIMSE status (None: none came).
Op = Callable[[Session], int | None]
# New UIDs of stored copies: apart from the corpus's own (UID_ROOT + digits) and bench_store's (UID_ROOT + "9.").
_COPY_ROOT = UID_ROOT + "7."
_UID_TAGS = (0x0020000D, 0x0020000E, 0x00080018)  # Study, Series, SOP Instance UID
_MEDIA_SOP_INSTANCE = 0x00020003
_PATIENT_ID = 0x00100020
_SUCCEEDED = frozenset({"Success", "Warning"})  # a Warning did it, with a remark (PS3.7 C.1.2)
_NONE = "none"


@dataclass(frozen=True)
class Block:
    """One block of one metric: its samples and what the peer answered (see the module docstring)."""

    metric: str
    values: tuple[float, ...]
    ops: int
    failed: int
    bytes: int = 0
    images: int = 0
    associations: int = 1
    statuses: Mapping[str, int] = field(default_factory=dict)

    def to_json(self, *, round: int, slot: int, started_ns: int) -> dict[str, JSON]:
        """The samples.jsonl line (docs/design/load-and-attack.md 4); round, slot and start are the caller's."""
        return {
            "metric": self.metric,
            "round": round,
            "slot": slot,
            "started_ns": started_ns,
            "ops": self.ops,
            "values": list(self.values),
            "bytes": self.bytes,
            "images": self.images,
            "failed": self.failed,
            "associations": self.associations,
            "statuses": dict(sorted(self.statuses.items())),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Block:
        """A Block from a samples.jsonl line (round, slot, started_ns left to the reader); ValueError if malformed."""
        try:
            statuses = d.get("statuses", {})
            if not isinstance(statuses, Mapping):
                raise TypeError("statuses is not an object")
            return cls(
                str(d["metric"]),
                tuple(float(v) for v in d["values"]),
                int(d["ops"]),
                int(d["failed"]),
                int(d.get("bytes", 0)),
                int(d.get("images", 0)),
                int(d.get("associations", 1)),
                {str(k): int(v) for k, v in statuses.items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"malformed samples line ({exc.__class__.__name__}: {exc}); expected the keys metric, values, ops, "
                "failed (and bytes, images, associations, statuses) as loadgen.Block.to_json writes them"
            ) from None


def joined(blocks: Sequence[Block]) -> Block:
    """Blocks of one metric taken back to back, as one block: every value kept, counts and statuses summed."""
    if not blocks or len({b.metric for b in blocks}) != 1:
        raise ValueError(f"joined: needs blocks of one metric, got {[b.metric for b in blocks]}")
    statuses: Counter[str] = Counter()
    for block in blocks:
        statuses.update(block.statuses)
    return Block(
        blocks[0].metric,
        tuple(v for b in blocks for v in b.values),
        sum(b.ops for b in blocks),
        sum(b.failed for b in blocks),
        sum(b.bytes for b in blocks),
        sum(b.images for b in blocks),
        sum(b.associations for b in blocks),
        dict(statuses),
    )


def _key(status: int | None) -> str:
    return status_hex(status) or _NONE


def _failed(status: int | None) -> bool:
    return status is None or category(status) not in _SUCCEEDED


# -- latency: one association, a warm-up, n timed operations -------------------------------


def echo_op() -> Op:
    """C-ECHO on the session."""
    return lambda session: session.echo().status


def find_op(query: Dataset, model: Model) -> Op:
    """C-FIND `query` on the session, to its final response."""
    return lambda session: session.find(query, model).status


def latency_block(metric: str, session_factory: Callable[[], Session], op: Op, n: int) -> Block:
    """Open a session, one warm-up `op` (not kept), `n` timed `op`s, close; one value per timed op."""
    if n < 1:
        raise ValueError(f"latency_block({metric!r}): n must be at least 1, got {n}")
    with session_factory() as session:
        if not session.established:
            return Block(metric, (), 0, n, statuses={_NONE: n})
        op(session)  # warm-up: the first operation pays for lazy set-up on either side
        values: list[float] = []
        statuses: Counter[str] = Counter()
        failed = 0
        for _ in range(n):
            start = time.perf_counter_ns()
            status = op(session)
            values.append((time.perf_counter_ns() - start) / 1e9)
            statuses[_key(status)] += 1
            failed += _failed(status)
    return Block(metric, tuple(values), len(values), failed, statuses=dict(statuses))


# -- association set-up ----------------------------------------------------------------------


def association_block(
    peer: Endpoint,
    contexts: Sequence[PresentationContext],
    n: int,
    *,
    modality: Modality | None = None,
    metric: str = "association.setup",
) -> Block:
    """`n` x (associate, release) with `contexts`; the value is the associate call only (to established or refused)."""
    if n < 1:
        raise ValueError(f"association_block: n must be at least 1, got {n}")
    modality = modality or Modality()
    values: list[float] = []
    statuses: Counter[str] = Counter()
    for _ in range(n):
        start = time.perf_counter_ns()
        session = Session(peer, contexts, modality=modality)
        values.append((time.perf_counter_ns() - start) / 1e9)
        statuses[_outcome(session)] += 1
        session.close()
    failed = n - statuses["accepted"]
    return Block(metric, tuple(values), n, failed, associations=n, statuses=dict(statuses))


def _outcome(session: Session) -> str:
    if session.established:
        return "accepted"
    return "rejected" if session.error.startswith("association rejected") else _NONE


# -- storing a study -------------------------------------------------------------------------


def fresh_study(datasets: Iterable[Dataset], *, seed: int, salt: str) -> list[Dataset]:
    """Copies of `datasets` with new Study, Series, SOP Instance UIDs and Patient ID, alike for alike seed and salt.

    Not only new instance UIDs (so a device that refuses duplicates is not measured refusing):
    copies must not grow the stored study or its patient either, or the finds and retrieves of
    them would answer more every round. The copies share every other element (and the pixel
    data) with the originals; never modify them.
    """
    mapping: dict[str, str] = {}

    def new_uid(old: str) -> str:
        if old not in mapping:
            mapping[old] = generate_uid(prefix=_COPY_ROOT, entropy_srcs=["patchgate-loadgen", str(seed), salt, old])
        return mapping[old]

    def new_patient(old: str) -> str:
        # LO, at most 64 characters (PS3.5 6.2): the old ID's start and a digest of what makes the copy
        digest = hashlib.sha256(f"patchgate-loadgen/{seed}/{salt}/{old}".encode()).hexdigest()[:12]
        return f"{old[:40]}-L{digest}"

    out: list[Dataset] = []
    for ds in datasets:
        copied = _shallow(ds)
        for tag in _UID_TAGS:
            if tag in ds:
                copied[tag] = DataElement(tag, "UI", new_uid(str(ds[tag].value)))
        if _PATIENT_ID in ds:
            copied[_PATIENT_ID] = DataElement(_PATIENT_ID, "LO", new_patient(str(ds[_PATIENT_ID].value)))
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            copied.file_meta = _shallow(meta)
            if 0x00080018 in copied:
                copied.file_meta[_MEDIA_SOP_INSTANCE] = DataElement(
                    _MEDIA_SOP_INSTANCE, "UI", str(copied.SOPInstanceUID)
                )
        out.append(copied)
    return out


def _shallow(ds: Any) -> Any:
    """A copy of a Dataset whose element dict is its own: setting an element there leaves `ds` alone."""
    copied = copy.copy(ds)
    copied._dict = dict(ds._dict)  # copy.copy shares the element dict; elements are replaced, never changed
    return copied


def store_contexts(datasets: Iterable[Dataset]) -> list[PresentationContext]:
    """One context per (SOP class, transfer syntax) of the datasets, in first-seen order."""
    pairs = dict.fromkeys((str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets)
    return [build_context(sop_class, [syntax]) for sop_class, syntax in pairs]


@dataclass
class _Share:
    """One association's part of a parallel study store (a worker thread's result)."""

    datasets: list[Dataset]
    end_ns: int = 0
    statuses: list[int | None] = field(default_factory=list)
    sent_bytes: int = 0
    done: bool = False


def study_block(
    peer: Endpoint,
    study: Sequence[Dataset],
    parallel: int = 1,
    *,
    seed: int,
    round: int,
    metric: str = "",
    modality: Modality | None = None,
) -> Block:
    """Store `study` under new UIDs (seeded by `seed`, `round`, `metric`) over `parallel` associations; one value.

    The value is the wall time from the moment every association is established to the last C-STORE
    response, the study split round-robin over the associations, each in its own thread; releases
    come after. Association set-up is left out: it is a metric of its own, and a C-STORE slow-down
    of 20 % read 1.17x with it in (and noisier).
    """
    metric = metric or ("store.study" if parallel == 1 else "store.study.parallel")
    if not 1 <= parallel <= 64 or not study:
        raise ValueError(f"study_block({metric!r}): parallel must be within 1..64 and the study non-empty")
    modality = modality or Modality()
    datasets = fresh_study(study, seed=seed, salt=f"{metric}/{round}")
    contexts = store_contexts(datasets)
    shares = [_Share(datasets[i::parallel]) for i in range(parallel) if datasets[i::parallel]]
    start = threading.Barrier(len(shares) + 1, timeout=modality.acse_timeout + modality.network_timeout)

    def work(share: _Share) -> None:
        with Session(peer, contexts, modality=modality) as session:
            with contextlib.suppress(threading.BrokenBarrierError):  # another worker's association hung: go on
                start.wait()
            outcomes = session.store(share.datasets)
            share.end_ns = time.perf_counter_ns()
            share.statuses = [o.status for o in outcomes]
            share.sent_bytes = session.sent_bytes
        share.done = True

    threads = [
        threading.Thread(target=work, args=(s,), name=f"{metric}-{i}", daemon=True) for i, s in enumerate(shares)
    ]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # bounded by the barrier's timeout
        start.wait()  # the last party: every association is established (or refused); the stores start now
    t0 = time.perf_counter_ns()
    for share, thread in zip(shares, threads, strict=True):
        # Bounded: association, every store at most its DIMSE timeout, the release.
        thread.join(
            timeout=2 * modality.acse_timeout
            + modality.network_timeout
            + modality.dimse_timeout * (1 + len(share.datasets))
        )
    statuses: Counter[str] = Counter()
    failed = images = sent = 0
    end = t0
    for share in shares:
        answered = share.statuses if share.done else []
        for status in answered:
            statuses[_key(status)] += 1
            failed += _failed(status)
        images += sum(1 for s in answered if not _failed(s))
        missing = len(share.datasets) - len(answered)  # a worker that never finished: its stores count as failed
        statuses[_NONE] += missing
        failed += missing
        sent += share.sent_bytes
        end = max(end, share.end_ns or time.perf_counter_ns())
    if not statuses[_NONE]:
        del statuses[_NONE]
    return Block(metric, ((end - t0) / 1e9,), 1, failed, sent, images, len(shares), dict(statuses))


# -- retrieving: time to first and last object -----------------------------------------------


def retrieve_block(
    peer: Endpoint,
    query: Dataset,
    how: Literal["move", "get"],
    *,
    model: Model = "study",
    destination: str = "",
    arrivals: Path | None = None,
    sop_classes: Iterable[tuple[str, str]] = (),
    modality: Modality | None = None,
    wait: float = 10.0,
) -> tuple[Block, Block]:
    """One C-MOVE or C-GET; the `<how>.first` and `<how>.last` blocks (one value each: seconds from the request).

    C-GET: from the C-GET-RQ sent to the first / last C-STORE handled on the session.
    C-MOVE: from the C-MOVE-RQ sent to the first / last C-STORE-RQ the move `destination` logged
    in its `arrivals` file (both stamped with time.time_ns()); lines are taken from the file's
    end before the request, waiting at most `wait` s after the final response for as many as
    the peer reported completed.
    """
    modality = modality or Modality()
    if how == "get":
        contexts, roles = get_contexts(model, sop_classes)
        if len(contexts) < 2:
            raise ValueError("retrieve_block(get): sop_classes is empty; give the (SOP class, syntax) pairs to accept")
    elif how == "move":
        if not destination or arrivals is None:
            raise ValueError("retrieve_block(move): needs the destination AE title and its arrivals file (--arrivals)")
        contexts, roles = [build_context(qr_sop_class(model, "move"))], []
    else:
        raise ValueError(f"retrieve_block: how must be 'move' or 'get', got {how!r}")
    with Session(peer, contexts, modality=modality, roles=roles) as session:
        if not session.established:
            return _retrieved(how, None, [], 0, 0)
        if how == "get":
            t0 = time.perf_counter_ns()
            result = session.get(query, model)
            times = [r.perf_ns for r in result.received]
            size = sum(r.bytes for r in result.received)
        else:
            assert arrivals is not None
            offset = arrivals.stat().st_size if arrivals.exists() else 0
            t0 = time.time_ns()
            result = session.move(query, destination, model)
            lines = _moved(arrivals, offset, t0, result.completed + result.warning, wait)
            times = [a.t_ns for a in lines]
            size = sum(a.bytes for a in lines)
    return _retrieved(how, result.status, [(t - t0) / 1e9 for t in times], size, result.completed + result.warning)


def _moved(path: Path, offset: int, t0: int, expected: int, wait: float) -> list[Arrival]:
    """The C-STORE-RQs of this C-MOVE in the destination's arrival log, waiting up to `wait` s for `expected`."""
    # Not filtered by Move Originator AE Title (PS3.7 9.3.1.1): pynetdicom 3.0.4's move SCP puts its own
    # AE title there, not the requester's. The destination's log belongs to this run alone.
    return _arrived(path, offset, lambda a: a.t_ns >= t0 and bool(c_stores([a])), expected, wait)


def _arrived(path: Path, offset: int, keep: Callable[[Arrival], bool], expected: int, wait: float) -> list[Arrival]:
    """The lines of `path` from `offset` on that `keep` takes, read until `expected` of them came or `wait` s passed."""
    found: list[Arrival] = []
    deadline = time.monotonic() + wait
    while True:
        arrivals, offset = read_arrivals(path, offset)
        found += [a for a in arrivals if keep(a)]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def _retrieved(how: str, status: int | None, seconds: list[float], size: int, expected: int) -> tuple[Block, Block]:
    """The first and last blocks of one retrieve; failed if refused, unanswered, or fewer objects than reported."""
    failed = int(_failed(status) or not seconds or len(seconds) < expected)
    statuses = {_key(status): 1}
    common: dict[str, Any] = {"bytes": size, "images": len(seconds), "statuses": statuses}
    if not seconds:
        return Block(f"{how}.first", (), 0, failed, **common), Block(f"{how}.last", (), 0, failed, **common)
    return (
        Block(f"{how}.first", (min(seconds),), 1, failed, **common),
        Block(f"{how}.last", (max(seconds),), 1, failed, **common),
    )


# -- workflow: a device action to the first request it causes -------------------------------


def first_arrival_seconds(arrivals: Iterable[Arrival], started_ns: int, messages: Collection[str]) -> float | None:
    """Seconds from `started_ns` to the earliest request received of one of `messages` stamped at or after it.

    A message is a request's name ("N-SET-RQ": any) or its `Arrival.kind` ("N-SET-RQ COMPLETED": only
    that MPPS status). Both stamps are time.time_ns() (one CLOCK_REALTIME for every process of one
    kernel); None when no such line is there. Lines before the start are an earlier block's, never this one's.
    """
    stamps = [
        a.t_ns
        for a in arrivals
        if a.direction == "received" and (a.message in messages or a.kind in messages) and a.t_ns >= started_ns
    ]
    return (min(stamps) - started_ns) / 1e9 if stamps else None


def workflow_block(
    metric: str, act: Callable[[], str], arrivals: Path, messages: Collection[str], *, wait: float = 10.0
) -> Block:
    """One device action, timed from its start to the first of `messages` in the simulator's `arrivals` log.

    `act` makes the device do the action and returns "" when it was done, else its outcome ("failed",
    "timeout", ...). From its start, not its return: a device whose action answers once its effects
    reached the simulators (the reference modality's do) has sent before it returns. One value;
    failed (no value) when the action was not done or nothing arrived within `wait` s of its return.
    `statuses`: {"arrived": 1}, {"no-arrival": 1} or {<the action's outcome>: 1}.
    """
    offset = arrivals.stat().st_size if arrivals.exists() else 0  # before the start: nothing of it is missed
    started = time.time_ns()
    outcome = act()
    if outcome:
        return Block(metric, (), 0, 1, associations=0, statuses={outcome: 1})
    found = _arrived(arrivals, offset, lambda a: first_arrival_seconds([a], started, messages) is not None, 1, wait)
    seconds = first_arrival_seconds(found, started, messages)
    if seconds is None:
        return Block(metric, (), 0, 1, associations=0, statuses={"no-arrival": 1})
    return Block(metric, (seconds,), 1, 0, associations=0, statuses={"arrived": 1})
