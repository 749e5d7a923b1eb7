"""simulators.negotiation in words: context results (PS3.8 Table 9-18) and A-ASSOCIATE-RJ fields (Table 9-21)."""

from __future__ import annotations

import pytest

from simulators.negotiation import ContextAnswer, Negotiation, Proposal, Rejection, context_words, syntax_words

CT = Proposal("1.2.840.10008.5.1.4.1.1.2", ("1.2.840.10008.1.2",))


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (0, "accepted"),
        (1, "rejected by the user"),
        (2, "rejected, no reason given"),
        (3, "rejected: abstract syntax unsupported"),
        (4, "rejected: transfer syntax unsupported"),
        (7, "rejected: result 7"),  # not in the standard: the number, not a guess
        (None, "not answered"),
    ],
)
def test_context_results_in_words(result: int | None, words: str) -> None:
    assert context_words(ContextAnswer(CT, result)) == words


def test_context_words_fit_a_terminal_column() -> None:
    """The terminal cuts values at 40 characters with their quotes: every result is said whole."""
    assert all(len(context_words(ContextAnswer(CT, r))) <= 38 for r in (0, 1, 2, 3, 4, None))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ((1, 1, 7), "rejected permanent by the service user: called AE title not recognised"),
        ((1, 1, 3), "rejected permanent by the service user: calling AE title not recognised"),
        ((2, 2, 1), "rejected transient by the service provider (ACSE): no reason given"),
        ((1, 2, 2), "rejected permanent by the service provider (ACSE): protocol version not supported"),
        ((2, 3, 2), "rejected transient by the service provider (presentation): local limit exceeded"),
        ((1, 1, 9), "rejected permanent by the service user: reason 9"),  # reserved
        ((3, 4, 1), "result 3 by the source 4: reason 1"),  # malformed RJ: numbers, never a wrong word
    ],
)
def test_rejections_in_words(fields: tuple[int, int, int], words: str) -> None:
    rejection = Rejection(*fields)
    assert rejection.words() == words
    assert Negotiation(rejected=rejection).words() == words


def test_syntax_words() -> None:
    assert syntax_words("1.2.840.10008.1.2.5") == "1.2.840.10008.1.2.5 RLE Lossless"
    assert syntax_words("1.2.3.4") == "1.2.3.4"
