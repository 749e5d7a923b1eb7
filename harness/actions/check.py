"""Before anything starts: a profile's device actions are complete, name known placeholders, and can run here."""

from __future__ import annotations

import sys
from typing import TextIO

from harness.actions.prompt import require_terminal
from harness.errors import ProfileError
from harness.placeholders import ACTION_VALUES, NAMES, RIS_NAMES, check_templates
from harness.profile import Profile

__all__ = ["check_actions"]


def check_actions(profile: Profile, stdin: TextIO | None = None) -> None:
    """ProfileError for an unknown placeholder or corpus item; ActionError when operator prompts have no terminal."""
    actions = profile.device.actions
    templates: dict[str, str] = {}
    problems: list[str] = []
    corpus_keys = _corpus_keys(profile.corpus_size)
    for name, spec in sorted(actions.items()):
        where = f"{profile.source}: device.actions.{name}"
        templates |= spec.templates(where)
        problems += [f"{where}.items: no corpus item {item!r}" for item in spec.items if item not in corpus_keys]
    names = NAMES if profile.ris_simulator is not None else NAMES - RIS_NAMES
    check_templates(templates, names | ACTION_VALUES)
    if problems:
        raise ProfileError("; ".join(problems), hint=f"corpus items: {', '.join(sorted(corpus_keys))}")
    prompts = sorted(n for n, s in actions.items() if s.kind == "prompt")
    if prompts:
        require_terminal(prompts, sys.stdin if stdin is None else stdin)


def _corpus_keys(size: str) -> frozenset[str]:
    from simulators.corpus import keys

    return frozenset(keys(size))
