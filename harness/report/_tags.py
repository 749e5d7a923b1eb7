"""Which observations of which cases carry which tags (Observation.INVENTORY, ...), as the runs recorded them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from harness.model import CaseRecord, Comparison, RunRecord

__all__ = ["Tags"]


@dataclass(frozen=True)
class Tags:
    """Case id → observation name → its tags; a name tagged in any run counts."""

    by_case: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, records: Iterable[RunRecord]) -> Tags:
        return cls._of(case for record in records for case in record.cases)

    @classmethod
    def _of(cls, cases: Iterable[CaseRecord]) -> Tags:
        found: dict[str, dict[str, frozenset[str]]] = {}
        for case in cases:
            for o in case.observations:
                if o.tags:
                    names = found.setdefault(case.case, {})
                    names[o.name] = names.get(o.name, frozenset()) | frozenset(o.tags)
        return cls(found)

    @classmethod
    def read(cls, comparison: Comparison) -> Tags:
        """From the comparison itself: each case keeps the tags its runs gave their observations."""
        return cls({c.case: {n: frozenset(t) for n, t in c.tags.items()} for c in comparison.cases if c.tags})

    def names(self, tag: str) -> dict[str, frozenset[str]]:
        """Case id → the names of its observations that carry `tag` (cases without one are left out)."""
        tagged = {
            case: frozenset(n for n, tags in names.items() if tag in tags) for case, names in self.by_case.items()
        }
        return {case: names for case, names in tagged.items() if names}
