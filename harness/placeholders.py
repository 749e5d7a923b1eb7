"""Placeholders in profile commands and configuration templates: `{name}` filled from the run's values."""

from __future__ import annotations

import re
from collections.abc import Mapping

from harness.errors import ProfileError

__all__ = ["NAMES", "check_templates", "render"]

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")

# Every placeholder a run fills (harness.surroundings.Surroundings.placeholders gives their values).
NAMES = frozenset(
    {
        "python", "ae_title", "host", "port", "http_port", "workdir", "profile_dir", "variant",
        "pacs.ae_title", "pacs.host", "pacs.port", "modality.ae_title",
        "arr.host", "arr.udp_port", "arr.tls_port", "tls.dir", "tls.ca", "tls.cert", "tls.key",
    }
)  # fmt: skip


def check_templates(templates: Mapping[str, str]) -> None:
    """Before anything starts: every `{name}` in `templates` (where -> text) is known; one ProfileError for all."""
    problems = [
        f"{where}: unknown placeholder {{{name}}}"
        for where, text in templates.items()
        for name in _PLACEHOLDER.findall(text)
        if name not in NAMES
    ]
    if problems:
        raise ProfileError(
            "; ".join(problems), hint=f"known placeholders: {', '.join('{' + k + '}' for k in sorted(NAMES))}"
        )


def render(template: str, values: Mapping[str, str], where: str) -> str:
    """Fill `{name}` placeholders; an unknown name is a ProfileError naming `where`."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ProfileError(
                f"{where}: unknown placeholder {{{key}}} in {template!r}",
                hint=f"known placeholders: {', '.join('{' + k + '}' for k in sorted(values))}",
            )
        return values[key]

    return _PLACEHOLDER.sub(substitute, template)
