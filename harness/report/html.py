"""report.html: one self-contained page a QA engineer or regulator can read without tools, from Jinja2 templates.

No external URLs and no scripts: the verdict and its reasons, the runs, counts by case
status, the performance metrics and each robustness input's reaction before and after (when
the runs had those phases), the security posture (what loosened, what tightened, what stayed), the software
changes of a containerised device (each package's version before and after), and for every
case with differences a before | after table. Noise is listed too, collapsed, so nothing
the comparison saw is hidden.

The templates ship in harness/report/templates/: `report.html` extends `layout.html`, whose
blocks `styles`, `logo`, `header`, `nav`, `content` and `signoff` a manufacturer overrides from a
directory of their own (looked in first), as can any section partial (`_security.html`, ...).
Every value is escaped (autoescape on), and a name a template does not know is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jinja2

from harness.compare.security import MINUS
from harness.errors import HarnessError
from harness.model import Comparison, Manifest, Observation, Verdict
from harness.report._tags import Tags
from harness.report._view import build_page
from harness.rundir import OutDir

__all__ = ["REPORT", "HtmlReporter", "check_templates", "render_html", "write_html"]

REPORT = "report.html"  # the template rendered (the page entry point)


class HtmlReporter:
    """Writes `report.html` from the packaged templates, or from `templates` first when given."""

    name = "html"

    def __init__(self, templates: Path | None = None, fingerprint: str = "") -> None:
        self.templates = templates
        self.fingerprint = fingerprint

    def write(self, comparison: Comparison, out: Path, runs: Sequence[Manifest]) -> Path:
        return write_html(comparison, out, runs, templates=self.templates, fingerprint=self.fingerprint)


def write_html(
    comparison: Comparison,
    out: Path,
    runs: Sequence[Manifest] = (),
    *,
    templates: Path | None = None,
    fingerprint: str = "",
) -> Path:
    """Write `out/report.html`; `fingerprint`: the evidence pack's signing key ("": no pack)."""
    path = OutDir(Path(out)).html
    page = render_html(comparison, runs, templates=templates, fingerprint=fingerprint, base=path.parent)
    path.write_text(page, encoding="utf-8")
    return path


def render_html(
    comparison: Comparison,
    runs: Sequence[Manifest],
    *,
    tags: Tags | None = None,
    templates: Path | None = None,
    fingerprint: str = "",
    base: Path | None = None,
) -> str:
    """The whole page as one string; `tags`: the observations' tags (default: those the comparison carries);
    `base`: the folder it is written into, for links to the runs' records (None: no links)."""
    inventory = (tags or Tags.read(comparison)).names(Observation.INVENTORY)
    page = build_page(comparison, runs, inventory, fingerprint=fingerprint, base=base)
    env = _environment(templates)
    try:
        return env.get_template(REPORT).render(report=page, comparison=comparison, runs=tuple(runs))
    except jinja2.TemplateError as exc:
        raise _template_error(exc, templates) from None


def check_templates(templates: Path) -> None:
    """Fail now, not after the runs, when a template directory is missing or its templates do not render."""
    render_html(
        Comparison("device", ("baseline",), "candidate", Verdict.INCONCLUSIVE, ("check",), ()), [], templates=templates
    )


def _environment(templates: Path | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("harness.report", "templates")]
    if templates is not None:
        if not Path(templates).is_dir():
            raise HarnessError(
                f"{templates}: report template directory not found",
                hint="pass a directory holding report.html or partials to override (see harness/report/templates)",
            )
        loaders.insert(0, jinja2.FileSystemLoader(templates))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,  # every template, whatever its name: values from devices are hostile text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["MINUS"] = MINUS
    return env


def _template_error(exc: jinja2.TemplateError, templates: Path | None) -> HarnessError:
    where = f"{exc.filename or exc.name}:{exc.lineno}: " if isinstance(exc, jinja2.TemplateSyntaxError) else ""
    origin = f"{templates}: " if templates is not None else ""
    return HarnessError(
        f"{origin}report template error: {where}{type(exc).__name__}: {exc}",
        hint="fix the template, or remove it to use the packaged one",
    )
