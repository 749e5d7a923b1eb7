"""Seeded synthetic runs of any size, in the shapes of tests/factories.py, for golden comparisons and scripts/bench_compare.py."""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.compare.policy import ExpectedChange, Policy
from harness.model import JSON, CaseRecord, CorpusInfo, Observation, Outcome, RunRecord, Security
from tests.factories import make_case, make_reference_run

__all__ = ["MODULE_SIZE", "Synthetic", "synthetic"]

MODULE_SIZE = 40  # cases per synthetic suite module, as a real suite module holds tens of cases
_ROOT = "1.2.826.0.1.3680043.10.1422"  # the corpus UID root: its UIDs are kept by normalisation
_STARTED, _FINISHED = "2026-11-28T10:00:00+00:00", "2026-11-28T10:20:00+00:00"
_SERVICES = ("storage", "query", "negotiation", "tls", "retrieve", "worklist")
_FORCED = {"big": "query", "expect": "tls"}  # the only services where these fates show
_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5")


@dataclass(frozen=True)
class Synthetic:
    """Two baseline replicas, a candidate and the policy for them; `regressed`: the case ids the candidate broke."""

    baselines: tuple[RunRecord, ...]
    candidate: RunRecord
    policy: Policy
    regressed: frozenset[str]


def synthetic(cases: int, seed: int = 1422) -> Synthetic:
    """`cases` cases per run: about 2 % regressed (one in ten of them with 30 differences), 1 % changed as the
    policy expects, 1 % noisy between the baselines, a sixth not applicable; device UIDs, dates and
    times differ per run and normalise equal. The same arguments give equal records."""
    plan = random.Random(seed)
    fates = [_fate(plan.random()) for _ in range(cases)]
    for i, fate in ((3, "big"), (5, "expect"), (7, "noise")):  # every fate at least once, however small
        if i < cases:
            fates[i] = fate
    runs = [_run(fates, seed, role, replica) for role, replica in (("baseline", 1), ("baseline", 2), ("candidate", 1))]
    policy = Policy((ExpectedChange("tls/*", "accepted", "TLS 1.0 switched off", ticket="SEC-12"),))
    regressed = frozenset(c.case for c, fate in zip(runs[2].cases, fates, strict=True) if fate in ("regress", "big"))
    return Synthetic((runs[0], runs[1]), runs[2], policy, regressed)


def _fate(draw: float) -> str:
    if draw < 0.002:
        return "big"  # a regression with more differences than the report shows
    if draw < 0.02:
        return "regress"
    if draw < 0.03:
        return "expect"
    if draw < 0.04:
        return "noise"
    return "same"


def _run(fates: list[str], seed: int, role: str, replica: int) -> RunRecord:
    mint = random.Random(f"{seed}-{role}-{replica}")  # each run mints its own device UIDs
    after, second = role == "candidate", role == "baseline" and replica == 2
    cases = [_case(i, fate, mint, after=after, second=second) for i, fate in enumerate(fates)]
    corpus = CorpusInfo(seed, f"{seed % 256:02x}" * 32, uid_root=_ROOT + ".", items=24)
    return make_reference_run(cases, role, replica, corpus=corpus, started=_STARTED, finished=_FINISHED)


def _case(i: int, fate: str, mint: random.Random, *, after: bool, second: bool) -> CaseRecord:
    service = _FORCED.get(fate) or _SERVICES[i % len(_SERVICES)]
    if (service == "worklist" and fate != "same") or (fate == "noise" and service not in ("storage", "retrieve")):
        service = "storage" if i % 2 else "retrieve"  # where the fate shows
    name = f"{service}/test_{service}_{i // (MODULE_SIZE * len(_SERVICES)):03d}.py::test_{service}[{i}]"
    changed = after and fate in ("regress", "big")
    if service == "worklist":
        return make_case(name, Outcome.NOT_APPLICABLE)
    if service == "tls":
        accepted = not (after and fate == "expect")
        return CaseRecord(
            name,
            Outcome.PASSED,
            0.05,
            observations=(
                Observation("accepted", accepted, Security.EXPOSURE),
                Observation("handshake", {"cipher": "TLS_AES_256_GCM_SHA384", "failed": changed}),
            ),
        )
    if service == "storage":
        return make_case(
            name, Outcome.PASSED, 0.09, **_store(i, mint, changed, noisy=fate == "noise" and (second or after))
        )
    if service == "query":
        return make_case(name, Outcome.PASSED, 0.05, find=_find(i, mint, big=after and fate == "big", changed=changed))
    if service == "retrieve":
        return make_case(
            name,
            Outcome.FAILED if changed else Outcome.PASSED,
            0.2,
            **_retrieve(i, noisy=fate == "noise" and (second or after)),
        )
    return make_case(name, Outcome.PASSED, 0.1, transfer_syntaxes=_syntaxes(i, changed))


def _uid(mint: random.Random) -> str:
    return f"1.3.6.1.4.1.9590.100.1.2.{mint.randrange(10**20)}"


def _el(vr: str, *values: JSON) -> dict[str, JSON]:
    return {"vr": vr, "Value": list(values)}


def _dataset(i: int, mint: random.Random) -> dict[str, JSON]:
    return {
        "00080005": _el("CS", "ISO_IR 100"),
        "00080016": _el("UI", "1.2.840.10008.5.1.4.1.1.2"),
        "00080018": _el("UI", f"{_ROOT}.{i}.1"),
        "00080020": _el("DA", "20261128"),
        "00080030": _el("TM", f"10{i % 20:02d}00"),
        "00081111": _el("SQ", {"00081155": _el("UI", _uid(mint)), "00081150": _el("UI", "1.2.840.10008.3.1.2.3.3")}),
        "00100010": _el("PN", {"Alphabetic": f"Doe^Jane{i % 97}"}),
        "00100020": _el("LO", f"PG-{i:05d}"),
        "0020000D": _el("UI", f"{_ROOT}.{i}"),
        "00280010": _el("US", 512),
        "7FE00010": {"vr": "OB", "BulkDataURI": f"sha256:{i:064x}"},
    }


def _store(i: int, mint: random.Random, changed: bool, *, noisy: bool) -> dict[str, JSON]:
    dataset = _dataset(i, mint)
    if changed:
        dataset["00100010"] = _el("PN", {"Alphabetic": "Doe^John"})
    return {
        "store": {
            "accepted": True,
            "contexts": [{"abstract_syntax": "1.2.840.10008.5.1.4.1.1.2", "accepted": True, "result_reason": 0}],
            "instances": [{"sop_instance_uid": f"{_ROOT}.{i}.1", "status": "0xA700" if changed else "0x0000"}],
            "port": 40002 if noisy else 40001,
        },
        "retrieved": {"bit_identical": True, "completed": 1, "dataset": dataset},
        "timing.store": 0.05 + (i % 7) / 100,
    }


def _find(i: int, mint: random.Random, *, big: bool, changed: bool) -> dict[str, JSON]:
    count = 3 if big else 33  # the big regression loses 30 matches
    matches = [
        {"00080052": _el("CS", "STUDY"), "0020000D": _el("UI", f"{_ROOT}.{i}.{m}"), "00081030": _el("LO", f"STUDY {m}")}
        for m in range(count)
    ]
    return {"count": count, "matches": matches, "status": "0xC000" if changed and not big else "0x0000"}


def _retrieve(i: int, *, noisy: bool) -> dict[str, JSON]:
    objects = {
        f"CT-{s}": {"association": 1, "transfer_syntax": _SYNTAXES[n % len(_SYNTAXES)]}
        for n, s in enumerate(("implicit", "explicit", "rle"))
    }
    return {
        "get": {"completed": 3, "failed": 0, "status": "0x0000"},
        "wire": {"associations": 2 if noisy else 1, "objects": objects},
    }


def _syntaxes(i: int, changed: bool) -> dict[str, JSON]:
    table: dict[str, JSON] = {s: "accepted" for s in _SYNTAXES}
    if changed:
        table[_SYNTAXES[-1]] = "rejected: transfer syntax unsupported"
    return table
