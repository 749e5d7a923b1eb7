"""Fixtures the suites share: the device and PACS endpoints, the modality SCU, and the corpus."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from harness.context import SuiteContext
from harness.model import Endpoint
from simulators.corpus import CorpusItem, PatientEntry, generate, index
from simulators.modality import Modality, StoreResult


@pytest.fixture(scope="session")
def device(patchgate_context: SuiteContext) -> Endpoint:
    return patchgate_context.device


@pytest.fixture(scope="session")
def pacs(patchgate_context: SuiteContext) -> Endpoint:
    """The PACS simulator: the C-MOVE destination the device was configured with."""
    return patchgate_context.pacs


@pytest.fixture(scope="session")
def pacs_storage(patchgate_context: SuiteContext) -> Path:
    return Path(patchgate_context.pacs_storage)


@pytest.fixture(scope="session")
def services(patchgate_context: SuiteContext) -> tuple[str, ...]:
    return patchgate_context.services


@pytest.fixture(scope="session")
def make_modality(patchgate_context: SuiteContext) -> Callable[[str], Modality]:
    """A modality SCU with AE title `ae_title`; over TLS (the run's client certificate) when the device requires it."""
    context = None
    if patchgate_context.device.tls:
        from simulators.pki import load_pki

        context = load_pki(Path(patchgate_context.pki_dir)).client_context()

    def make(ae_title: str) -> Modality:
        return Modality(ae_title, ssl_context=context)

    return make


@pytest.fixture(scope="session")
def modality(patchgate_context: SuiteContext, make_modality: Callable[[str], Modality]) -> Modality:
    return make_modality(patchgate_context.modality_ae_title)


@pytest.fixture(scope="session")
def corpus(patchgate_context: SuiteContext) -> Mapping[str, CorpusItem]:
    return {item.key: item for item in generate(patchgate_context.corpus_seed)}


@pytest.fixture(scope="session")
def corpus_index(corpus: Mapping[str, CorpusItem]) -> tuple[PatientEntry, ...]:
    return index(corpus.values())


@pytest.fixture(scope="session")
def stored_corpus(device: Endpoint, modality: Modality, corpus: Mapping[str, CorpusItem]) -> StoreResult:
    """The whole corpus stored on the device once, for the query and retrieve suites."""
    result = modality.store(device, [item.dataset for item in corpus.values()])
    if not result.accepted:
        pytest.fail(f"could not store the corpus on the device: {result.error}")
    return result
