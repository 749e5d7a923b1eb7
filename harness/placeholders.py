"""Placeholders in profile commands and configuration templates: `{name}` filled from the run's values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from harness.errors import ProfileError

__all__ = ["ACTION_VALUES", "NAMES", "RIS_NAMES", "check_templates", "placeholders_in", "render"]

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")

# Every placeholder a run fills (harness.surroundings.Surroundings.placeholders gives their values).
NAMES = frozenset(
    {
        "python", "ae_title", "host", "port", "http_port", "workdir", "profile_dir", "variant",
        "pacs.ae_title", "pacs.host", "pacs.port", "ris.ae_title", "ris.host", "ris.port", "modality.ae_title",
        "worklist.date", "arr.host", "arr.udp_port", "arr.tls_port", "tls.dir", "tls.ca", "tls.cert", "tls.key",
        "worklist.dir", "worklist.root", "modality.port",
    }
)  # fmt: skip

# The RIS simulator's: a run that starts no RIS (no [simulators.ris], no mwl or mpps initiated) has no value for them.
RIS_NAMES = frozenset({"ris.ae_title", "ris.host", "ris.port"})


# What a suite passes to a device action on top of the run's values (harness.plugin's device_action):
# the worklist item the action is about, the objects to commit, a commitment's transaction, a study to forward.
ACTION_VALUES = frozenset(
    {
        "item.key", "item.sps_id", "item.accession_number", "item.requested_procedure_id", "item.patient_id",
        "item.patient_name", "item.study_uid", "item.modality", "item.station_ae",
        "instances", "transaction_uid", "study_uid",
    }
)  # fmt: skip


def check_templates(templates: Mapping[str, str], names: frozenset[str] = NAMES) -> None:
    """Before anything starts: every `{name}` in `templates` (where -> text) is in `names`; one ProfileError for all."""
    problems = [
        f"{where}: {{{name}}} names the RIS simulator, which this profile does not start (declare [simulators.ris])"
        if name in RIS_NAMES
        else f"{where}: unknown placeholder {{{name}}}"
        for where, text in templates.items()
        for name in _PLACEHOLDER.findall(text)
        if name not in names
    ]
    if problems:
        raise ProfileError(
            "; ".join(problems), hint=f"known placeholders: {', '.join('{' + k + '}' for k in sorted(names))}"
        )


def placeholders_in(template: str) -> list[str]:
    """The `{name}`s a template names, in order."""
    return _PLACEHOLDER.findall(template)


def render(
    template: str, values: Mapping[str, str], where: str, escape: Callable[[str], str] = lambda value: value
) -> str:
    """Fill `{name}` placeholders, each value through `escape` (e.g. URL quoting); an unknown name is a ProfileError."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ProfileError(
                f"{where}: unknown placeholder {{{key}}} in {template!r}",
                hint=f"known placeholders: {', '.join('{' + k + '}' for k in sorted(values))}",
            )
        return escape(values[key])

    return _PLACEHOLDER.sub(substitute, template)
