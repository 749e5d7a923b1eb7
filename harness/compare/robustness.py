"""Each robustness input's reaction in every run, read back from its case's observations (design 9), for the reports."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from harness.model import JSON, CaseRecord, InputReactions, Manifest, Reaction

__all__ = ["DETAIL", "REACTION", "input_of", "input_reactions"]

# What the robustness suite observes (suites/robustness/test_corpus.py); a case with a reaction is an input's case.
REACTION = "robustness.reaction"
DETAIL = "robustness.detail"
# The first "::name[" is the test's own (a parameter may hold "::" and brackets); the parameter runs to the last "]".
_PARAMETER = re.compile(r"::[A-Za-z_]\w*\[(.*)\]\Z", re.DOTALL)


def input_reactions(
    baselines: Sequence[Mapping[str, CaseRecord]],
    candidate: Mapping[str, CaseRecord],
    manifests: Sequence[Manifest],
) -> tuple[InputReactions, ...]:
    """One entry per case that observed a reaction in any run, in corpus order (the manifests' inputs), then by id.

    `baselines` and `candidate`: each run's cases by id; `manifests`: the runs', for the inputs' descriptions.
    """
    runs = [*baselines, candidate]
    cases = sorted({case for run in runs for case, record in run.items() if _observes(record)})
    described: dict[str, str] = {}
    order: dict[str, int] = {}
    for m in manifests:
        if m.robustness is not None:
            for k, v in m.robustness.descriptions.items():
                described.setdefault(k, v)
            for i in m.robustness.inputs:
                order.setdefault(i, len(order))
    found = [
        InputReactions(
            case=case,
            input=(name := input_of(case)),
            description=described.get(name, ""),
            before=tuple(_reaction(b.get(case)) for b in baselines),
            after=_reaction(candidate.get(case)),
        )
        for case in cases
    ]
    return tuple(sorted(found, key=lambda r: (order.get(r.input, len(order)), r.case)))


def input_of(case: str) -> str:
    """The input id a case is about: its test's parameter (`...::test_input[pdu.rq.version-0]`), else the case id."""
    found = _PARAMETER.search(case)
    return found.group(1) if found else case


def _observes(record: CaseRecord | None) -> bool:
    return record is not None and any(o.name == REACTION for o in record.observations)


def _reaction(record: CaseRecord | None) -> Reaction | None:
    if record is None or not _observes(record):
        return None
    observed = record.observed()
    value, detail = observed[REACTION], observed.get(DETAIL, "")
    kind, when = (_text(value.get("kind")), _text(value.get("when"))) if isinstance(value, dict) else (_text(value), "")
    return Reaction(kind, when, _text(detail))


def _text(value: JSON) -> str:
    """A recorded value as text: strings as they are, anything else (a suite of another shape) as its JSON."""
    return value if isinstance(value, str) else ("" if value is None else json.dumps(value, ensure_ascii=False))
