"""Placeholders in profile commands and configuration templates: `{name}` filled from the run's values."""

from __future__ import annotations

import re
from collections.abc import Mapping

from harness.errors import ProfileError

__all__ = ["render"]

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


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
