"""report.html: one self-contained page a QA engineer or regulator can read without tools.

No external URLs and no scripts: the verdict and its reasons, the runs, counts by case
status, the security posture (what loosened, what tightened, what stayed), the software
changes of a containerised device (each package's version before and after), and for every
case with differences a before | after table. Noise is listed too, collapsed, so nothing
the comparison saw is hidden.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from harness.compare.diff import format_side
from harness.compare.security import MINUS, value_words
from harness.model import (
    JSON,
    CaseComparison,
    CaseStatus,
    Classification,
    Comparison,
    Difference,
    DiffKind,
    Direction,
    Manifest,
    Outcome,
    Security,
    SecurityChange,
    Verdict,
)

__all__ = ["HtmlReporter", "render_html"]

_MEANING = {
    Verdict.UNCHANGED: "The patched device (candidate) behaves as the device did before the patch "
    "(baseline), apart from the noise measured between baseline runs.",
    Verdict.CHANGED_AS_EXPECTED: "The patched device behaves differently, but only in the ways the "
    "expected-change policy declares, each with a reason.",
    Verdict.REGRESSED: "The patched device behaves differently in ways the expected-change policy does "
    "not declare. Each regressed difference is listed below.",
    Verdict.INCONCLUSIVE: "The runs cannot support a verdict (a device did not start or crashed, or too "
    "few cases ran). Nothing is claimed about the patch.",
}
_STATUS_WORDS = {
    CaseStatus.REGRESSED: "Regressed",
    CaseStatus.CHANGED_AS_EXPECTED: "Changed as expected",
    CaseStatus.UNCHANGED: "Unchanged",
    CaseStatus.NOT_APPLICABLE: "Not applicable",
}
_ORDER = list(_STATUS_WORDS)  # sections: worst first
# The security posture's groups in reading order, each with what it means; "stayed" is collapsed.
_POSTURE = {
    Direction.LOOSENED: (
        "Loosened",
        "The patched device exposes more (e.g. accepts an older TLS version, listens on a new port, admits an "
        "unknown peer) or protects less (e.g. no longer sends an audit message, no longer refuses a peer).",
    ),
    Direction.TIGHTENED: (
        "Tightened",
        "The patched device exposes less or protects more (e.g. TLS now required, a port no longer listening).",
    ),
    Direction.CHANGED: (
        "Changed, direction unknown",
        "These changed, but their values (text or structured data) do not say whether that is looser or tighter: "
        "each one needs a reader's judgement.",
    ),
    Direction.NOISY: (
        "Noisy",
        "The two runs of the unpatched device already disagree on these, so no direction can be told.",
    ),
}
# The surface suite's case that records a container's software inventory, and its packages observation.
_INVENTORY_CASE = "surface/test_surface.py::test_inventory"
_PACKAGES = "packages."
_NOT_RUN = (None, Outcome.SKIPPED, Outcome.NOT_APPLICABLE)
_MEANS = {
    Security.EXPOSURE: "exposure: more of it is looser",
    Security.PROTECTION: "protection: less of it is looser",
    Security.NONE: "",
}

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1c1c1c; margin: 0; background: #fafafa; }
main, header { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header.verdict { margin: 0; max-width: none; padding: 20px 24px; color: #fff; }
header.verdict h1 { margin: 0 0 6px; font-size: 28px; }
header.verdict p, header.verdict ul { max-width: 1150px; margin: 6px 0; }
.v-UNCHANGED { background: #1f6f3d; } .v-CHANGED_AS_EXPECTED { background: #285e9c; }
.v-REGRESSED { background: #a2231d; } .v-INCONCLUSIVE { background: #8a5a00; }
h2 { margin-top: 32px; border-bottom: 2px solid #ddd; padding-bottom: 4px; }
h3 { margin: 24px 0 6px; font-size: 17px; word-break: break-all; }
table { border-collapse: collapse; width: 100%; background: #fff; margin: 8px 0; }
th, td { border: 1px solid #d0d0d0; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary { width: auto; min-width: 300px; display: inline-table; margin-right: 24px; vertical-align: top; }
table.diffs { table-layout: fixed; }
table.diffs th:nth-child(1) { width: 22%; } table.diffs th:nth-child(2) { width: 10%; }
table.diffs th:nth-child(3) { width: 10%; } table.diffs th:nth-child(6) { width: 14%; }
.muted { color: #666; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; font: 13px/1.35 ui-monospace, monospace; }
code { font: 13px ui-monospace, monospace; word-break: break-all; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 9px; font-size: 13px; color: #fff; }
.c-regressed, .s-regressed { background: #a2231d; } .c-expected, .s-changed_as_expected { background: #285e9c; }
.c-noise, .s-not_applicable { background: #777; } .s-unchanged { background: #1f6f3d; }
td.before { background: #fff4f4; } td.after { background: #f2fbf3; }
details { margin: 6px 0 0; } summary { cursor: pointer; color: #444; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { font-weight: 600; } dd { margin: 0; word-break: break-all; }
footer { color: #666; font-size: 13px; margin: 40px 0 24px; }
.posture { border-left: 6px solid #777; padding: 2px 0 2px 14px; margin: 18px 0; }
.posture h3 { margin-top: 4px; word-break: normal; }
.p-loosened { border-color: #a2231d; } .p-loosened h3 { color: #a2231d; }
.p-tightened { border-color: #1f6f3d; } .p-tightened h3 { color: #1f6f3d; }
.p-changed { border-color: #8a5a00; } .p-changed h3 { color: #8a5a00; }
.p-unchanged { border-color: #bbb; }
table.posture-rows { table-layout: fixed; }
table.posture-rows th:nth-child(1) { width: 30%; } table.posture-rows th:nth-child(2) { width: 16%; }
table.posture-rows th:nth-child(3) { width: 24%; }
.p-loosened .added, .p-loosened .removed { color: #a2231d; font-weight: 600; }
.p-tightened .added, .p-tightened .removed { color: #1f6f3d; font-weight: 600; }
.was { color: #666; } .arrow { color: #666; padding: 0 4px; }
table.software { table-layout: fixed; }
table.software th:nth-child(1) { width: 20%; } table.software th:nth-child(2) { width: 16%; }
table.software th:nth-child(3) { width: 16%; }
"""


class HtmlReporter:
    """Writes `report.html`."""

    name = "html"

    def write(self, comparison: Comparison, out: Path, runs: Sequence[Manifest]) -> Path:
        path = out / "report.html"
        path.write_text(render_html(comparison, runs), encoding="utf-8")
        return path


def render_html(comparison: Comparison, runs: Sequence[Manifest]) -> str:
    """The whole page as one string."""
    v = comparison.verdict
    title = f"patchgate: {comparison.device} — {v.value}"
    body = [
        f'<header class="verdict v-{v.value}"><h1>Verdict: {_e(v.value)}</h1>',
        f"<p><strong>Exit code {v.exit_code}.</strong> {_e(_MEANING[v])}</p>",
        _list(comparison.reasons),
        "</header><main>",
        _about(comparison),
        _runs(runs),
        _summary(comparison.cases),
        _security(comparison.security),
        _software(comparison.cases),
        _differences(comparison.cases),
        _all_cases(comparison.cases),
        f"<footer>Generated by patchgate on {_e(comparison.created or 'an unknown date')}.</footer></main>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _list(items: Iterable[str]) -> str:
    lines = "".join(f"<li>{_e(i)}</li>" for i in items)
    return f"<ul>{lines}</ul>" if lines else ""


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table; cells are HTML already (escape before)."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _td(content: str, cls: str = "", raw: bool = False) -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{content if raw else _e(content)}</td>"


def _about(c: Comparison) -> str:
    facts = [
        ("Device", c.device),
        ("Baseline (before the patch)", f"{c.baseline_variant}: {', '.join(c.baseline)}"),
        ("Candidate (after the patch)", f"{c.candidate_variant}: {c.candidate}"),
        ("Compared on", c.created or "unknown"),
    ]
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    return f"<section id='about'><h2>What was compared</h2><dl>{items}</dl></section>"


def _runs(runs: Sequence[Manifest]) -> str:
    if not runs:
        return "<section id='runs'><h2>Runs</h2><p>No run manifests were given.</p></section>"
    rows = []
    for m in runs:
        status = m.status.value + (f": {m.status_detail}" if m.status_detail else "")
        versions = "<br>".join(f"{_e(k)}: {_e(v)}" for k, v in sorted(m.versions.items()))
        rows.append(
            [
                _td(f"{m.role} {m.replica}"),
                _td(_variant(m), raw=True),
                _td(status),
                _td(str(m.cases_collected), "num"),
                _td(m.started),
                _td(_wall_time(m), "num"),
                _td(_memory(m), "num", raw=True),
                _td(versions, raw=True),
            ]
        )
    head = ["Role", "Variant", "Status", "Cases", "Started (UTC)", "Wall time", "Peak memory", "Versions"]
    return f"<section id='runs'><h2>Runs</h2>{_table(head, rows)}</section>"


def _variant(m: Manifest) -> str:
    """The variant's name, what it is (the profile's description), TLS if it requires it, and the image it ran."""
    parts = [f"<strong>{_e(m.variant)}</strong>"]
    description = m.extra.get("description")
    if description:
        parts.append(_e(str(description)))
    if m.extra.get("tls") is True:
        parts.append("requires DICOM TLS")
    image = m.extra.get("image")
    if isinstance(image, dict) and image.get("name"):
        parts.append(f"<code>{_e(str(image['name']))}</code> {_e(str(image.get('id', ''))[:19])}")
    return "<br>".join(parts)


def _memory(m: Manifest) -> str:
    """Peak memory of the device and the PACS simulator, as the run measured them when they stopped."""
    peaks = m.extra.get("memory_peak_bytes")
    if not isinstance(peaks, dict):
        return "not measured"
    shown = [f"{_e(str(role))} {value / 1e6:.0f} MB" for role, value in sorted(peaks.items()) if isinstance(value, int)]
    return "<br>".join(shown) or "not measured"


def _wall_time(m: Manifest) -> str:
    seconds = m.timings.get("total")
    if seconds is None:
        try:
            seconds = (datetime.fromisoformat(m.finished) - datetime.fromisoformat(m.started)).total_seconds()
        except (ValueError, TypeError):
            return "unknown"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.1f} s" if minutes else f"{rest:.1f} s"


def _summary(cases: Sequence[CaseComparison]) -> str:
    by_status = Counter(c.status for c in cases)
    rows = [[_td(_STATUS_WORDS[s]), _td(str(by_status[s]), "num")] for s in _ORDER]
    rows.append([_td("<strong>Total</strong>", raw=True), _td(str(len(cases)), "num")])
    by_class = Counter(d.classification for c in cases for d in c.differences)
    diff_rows = [[_td(k.value.capitalize()), _td(str(by_class[k]), "num")] for k in Classification]
    return (
        "<section id='summary'><h2>Summary</h2>"
        f"{_table(['Case status', 'Cases'], rows, 'summary')}"
        f"{_table(['Differences', 'Count'], diff_rows, 'summary')}"
        "<p>Noise: a difference that also appears between two runs of the unpatched device, so the patch "
        "cannot be told from chance. Expected: a difference the expected-change policy declares, with its "
        "reason. Regressed: any other difference.</p></section>"
    )


def _security(changes: Sequence[SecurityChange]) -> str:
    """The security posture: loosened, tightened, changed and noisy observations, then (collapsed) what stayed."""
    head = "<section id='security'><h2>Security posture</h2>"
    if not changes:
        return (
            f"{head}<p>No observation in these runs carries a security meaning (the suites mark TLS, access, "
            "identity, audit and network-surface observations).</p></section>"
        )
    count = {d: sum(1 for c in changes if c.direction is d) for d in Direction}
    said = [f"{count[d]} {_POSTURE[d][0].split(',')[0].lower()}" for d in _POSTURE if count[d]]
    said.append(f"{count[Direction.UNCHANGED]} stayed the same")
    parts = [
        head,
        f"<p><strong>{_e(', '.join(said))}.</strong> Each observation below is one the suites mark as "
        "<em>exposure</em> (more of it is looser: a TLS version accepted, a port listening, a peer admitted) or "
        "<em>protection</em> (less of it is looser: a refusal, an audit message sent, a client certificate "
        "required).</p>",
    ]
    for direction, (title, meaning) in _POSTURE.items():
        rows = [c for c in changes if c.direction is direction]
        if rows or direction in (Direction.LOOSENED, Direction.TIGHTENED):
            parts.append(
                f"<div class='posture p-{direction.value}'><h3>{_e(title)}: {len(rows)}</h3>"
                + (f"<p>{_e(meaning)}</p>{_posture_table(rows)}" if rows else "<p class='muted'>None.</p>")
                + "</div>"
            )
    stayed = [c for c in changes if c.direction is Direction.UNCHANGED]
    if stayed:
        table = _table(
            ["Case", "Observation", "Value (before and after)"],
            (
                [
                    _td(f"<code>{_e(c.case)}</code>", raw=True),
                    _td(_observation(c), raw=True),
                    _td(_value(c.before, c.absent == "before"), raw=True),
                ]
                for c in stayed
            ),
            "posture-rows",
        )
        parts.append(
            f"<div class='posture p-unchanged'><details><summary>Stayed the same: {len(stayed)} security "
            f"observation(s) (click to list them)</summary>{table}</details></div>"
        )
    parts.append("</section>")
    return "".join(parts)


def _posture_table(changes: Sequence[SecurityChange]) -> str:
    rows = [
        [
            _td(f"<code>{_e(c.case)}</code>", raw=True),
            _td(_observation(c), raw=True),
            _td(_movement(c), raw=True),
            _td(_judged(c), raw=True),
        ]
        for c in changes
    ]
    return _table(["Case", "Observation", "Before → after", "Policy"], rows, "posture-rows")


def _observation(c: SecurityChange) -> str:
    means = _MEANS[c.security]
    return f"<strong>{_e(c.name)}</strong>" + (f"<br><span class='muted'>{_e(means)}</span>" if means else "")


def _movement(c: SecurityChange) -> str:
    """Before → after in words: items gained and lost for lists, else both values."""
    if c.added or c.removed:
        lines = [f"<div class='added'>+ {_value(v)}</div>" for v in c.added]
        lines += [f"<div class='removed'>{MINUS} {_value(v)}</div>" for v in c.removed]
        return "".join(lines)
    before, after = _value(c.before, c.absent == "before"), _value(c.after, c.absent == "after")
    return f"<span class='was'>{before}</span><span class='arrow'>→</span><strong>{after}</strong>"


def _value(value: JSON, absent: bool = False) -> str:
    """A value as escaped HTML: plain words for simple values, indented JSON only for structured ones."""
    structured = isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict | list) for v in value))
    if structured and not absent:
        return f"<pre>{_e(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))}</pre>"
    return _e(value_words(value, absent=absent))


def _judged(c: SecurityChange) -> str:
    if c.direction is Direction.NOISY:
        return f"<span class='badge c-noise'>noise</span> {_e(c.reason or 'differs between baseline runs')}"
    if c.expected:
        return f"<span class='badge c-expected'>expected</span> {_e(c.reason)}"
    why = _e(c.reason) if c.reason else "<span class='muted'>not declared in the policy</span>"
    return f"<span class='badge c-regressed'>regressed</span> {why}"


def _software(cases: Sequence[CaseComparison]) -> str:
    """Every installed package the patch changed, with both versions; empty when no container inventory ran."""
    inventory = [c for c in cases if c.case.split("[")[0] == _INVENTORY_CASE]
    if all(c.before in _NOT_RUN and c.after in _NOT_RUN for c in inventory):
        return ""  # no inventory case, or the device ran as a local process
    parts = ["<section id='software'><h2>Software changes</h2>"]
    # A side whose inventory case did not pass recorded no packages: claiming "nothing changed" would be false.
    for c in inventory:
        for side, outcome in (("baseline", c.before), ("candidate", c.after)):
            if outcome is not Outcome.PASSED:
                parts.append(
                    f"<p><strong>The {side} recorded no software inventory</strong> (<code>{_e(c.case)}</code>: "
                    f"{_e(_outcome(outcome))}), so its packages cannot be compared; see Differences by case.</p>"
                )
    diffs = sorted(
        (d for c in inventory for d in c.differences if d.path.startswith(_PACKAGES)),
        key=lambda d: (d.path, d.case),
    )
    if diffs:
        parts.append(f"<p><strong>{_e(_package_counts(diffs))}</strong></p>{_package_table(diffs)}")
    elif len(parts) == 1:
        parts.append("<p>No installed package changed.</p>")
    parts.append("</section>")
    return "".join(parts)


def _package_counts(diffs: Sequence[Difference]) -> str:
    """The count sentence; upgraded or downgraded is not told, as that needs each packager's version ordering."""
    kinds = Counter(d.kind for d in diffs)
    added, removed = kinds[DiffKind.EXTRA], kinds[DiffKind.MISSING]
    n = len(diffs)
    return (
        f"{n} package{'' if n == 1 else 's'} changed: {n - added - removed} changed version, "
        f"{added} added, {removed} removed."
    )


def _package_table(diffs: Sequence[Difference]) -> str:
    rows = [
        [
            _td(f"<code>{_e(d.path[len(_PACKAGES) :])}</code>", raw=True),
            _td(_version(d.before, d.kind is DiffKind.EXTRA), "before", raw=True),
            _td(_version(d.after, d.kind is DiffKind.MISSING), "after", raw=True),
            _td(_classified(d), raw=True),
        ]
        for d in diffs
    ]
    return _table(["Package", "Baseline", "Candidate", "Judged"], rows, "software")


def _version(value: JSON, absent: bool) -> str:
    if absent:
        return "<span class='muted'>not installed</span>"
    return f"<code>{_e(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))}</code>"


def _classified(d: Difference) -> str:
    """A difference's classification as a badge, then the policy's reason (or why it is noise)."""
    badge = f"<span class='badge c-{d.classification.value}'>{_e(d.classification.value)}</span>"
    if d.reason:
        return f"{badge} {_e(d.reason)}"
    if d.classification is Classification.REGRESSED:
        return f"{badge} <span class='muted'>not declared in the policy</span>"
    return badge


def _differences(cases: Sequence[CaseComparison]) -> str:
    changed = sorted((c for c in cases if c.differences), key=lambda c: (_ORDER.index(c.status), c.case))
    if not changed:
        return "<section id='differences'><h2>Differences</h2><p>No differences at all.</p></section>"
    parts = ["<section id='differences'><h2>Differences by case</h2>"]
    for i, case in enumerate(changed, start=1):
        shown = [d for d in case.differences if d.classification is not Classification.NOISE]
        noise = [d for d in case.differences if d.classification is Classification.NOISE]
        parts.append(
            f"<section class='case' id='case-{i}'><h3>{_e(case.case)}</h3>"
            f"<p><span class='badge s-{case.status.value}'>{_e(_STATUS_WORDS[case.status])}</span> "
            f"Outcome in the baseline: <strong>{_e(_outcome(case.before))}</strong>; "
            f"in the candidate: <strong>{_e(_outcome(case.after))}</strong>.</p>"
        )
        if shown:
            parts.append(_diff_table(shown))
        if noise:
            parts.append(
                f"<details><summary>{len(noise)} difference(s) that are noise (they also differ between "
                f"baseline runs)</summary>{_diff_table(noise)}</details>"
            )
        parts.append("</section>")
    parts.append("</section>")
    return "".join(parts)


def _diff_table(diffs: Sequence[Difference]) -> str:
    rows = [
        [
            _td(f"<code>{_e(d.path)}</code>", raw=True),
            _td(d.kind.value.replace("_", " ")),
            _td(f"<span class='badge c-{d.classification.value}'>{_e(d.classification.value)}</span>", raw=True),
            _td(f"<pre>{_e(format_side(d, 'before', pretty=True))}</pre>", "before", raw=True),
            _td(f"<pre>{_e(format_side(d, 'after', pretty=True))}</pre>", "after", raw=True),
            _td(d.reason) if d.reason else _td("<span class='muted'>not declared in the policy</span>", raw=True),
        ]
        for d in diffs
    ]
    head = ["Path", "Kind", "Classification", "Before (baseline)", "After (candidate)", "Reason"]
    return _table(head, rows, "diffs")


def _all_cases(cases: Sequence[CaseComparison]) -> str:
    rows = [
        [
            _td(f"<code>{_e(c.case)}</code>", raw=True),
            _td(_STATUS_WORDS[c.status]),
            _td(_outcome(c.before)),
            _td(_outcome(c.after)),
            _td(str(len(c.differences)), "num"),
        ]
        for c in cases
    ]
    head = ["Case", "Status", "Baseline outcome", "Candidate outcome", "Differences"]
    return f"<section id='cases'><h2>All cases</h2>{_table(head, rows)}</section>"


def _outcome(outcome: Outcome | None) -> str:
    return outcome.value if outcome else "absent (case not run)"
