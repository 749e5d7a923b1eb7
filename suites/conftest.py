"""Fixtures the suites share: the device, PACS and RIS endpoints, their journals, the modality SCU, and the corpus."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from harness.context import SuiteContext
from harness.model import JSON, Endpoint
from harness.plugin import not_applicable
from harness.rundir import RunDir
from simulators.commitment import COMMITMENT, read_journal
from simulators.corpus import CorpusItem, PatientEntry, corpus_hash, generate, index, keys, reidentify
from simulators.modality import Modality, StoreResult
from simulators.ris import RequestLine, ScheduledItem, scheduled_items
from suites._scope import Scope
from suites._shared import SharedFind
from suites._support import device_requests


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
def commitment_journal(patchgate_context: SuiteContext) -> Callable[[], list[dict[str, JSON]]]:
    """Reads the PACS simulator's storage commitment journal as it is now: N-ACTIONs and reports, one dict a line."""
    context = patchgate_context
    path = Path(context.commitment_log) if context.commitment_log else Path(context.pacs_storage) / COMMITMENT
    return lambda: read_journal(path)


@pytest.fixture(scope="session")
def ris(patchgate_context: SuiteContext) -> Endpoint:
    """The RIS simulator (MWL + MPPS SCP); a case that uses it is not applicable when the run starts none."""
    if patchgate_context.ris is None:
        not_applicable("the run starts no RIS simulator (the profile declares no [simulators.ris])")
    return patchgate_context.ris


@pytest.fixture(scope="session")
def ris_requests(patchgate_context: SuiteContext, ris: Endpoint) -> Callable[[], list[RequestLine]]:
    """Reads the RIS simulator's request journal as it is now: one RequestLine per DIMSE request it received
    (suites._support.device_requests: the harness's own C-ECHOs left out)."""
    return device_requests(Path(patchgate_context.ris_requests))


@pytest.fixture(scope="session")
def worklist_items(patchgate_context: SuiteContext) -> tuple[ScheduledItem, ...]:
    """The run's worklist as the harness seeded an MWL device with it: for the modality's AE title, on the run's date.

    The suites query as that modality, so these are the answers a worklist provider must give (six items
    on its station, two on simulators.ris.OTHER_STATION).
    """
    context = patchgate_context
    if not context.worklist_date:
        not_applicable("the run records no worklist date (a run directory from before worklists)")
    return scheduled_items(context.corpus_seed, context.worklist_date, context.modality_ae_title)


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


@pytest.fixture(scope="module")
def _module_find_session(device: Endpoint, modality: Modality, scope: Scope) -> Iterator[SharedFind]:
    shared = SharedFind(device, modality, scope)
    yield shared
    shared.close()


@pytest.fixture
def shared_session(request: pytest.FixtureRequest, _module_find_session: SharedFind) -> SharedFind:
    """The module's one C-FIND association, for cases marked `shares_association` (they observe nothing about it)."""
    if request.node.get_closest_marker("shares_association") is None:
        pytest.fail(
            f"{request.node.nodeid} uses shared_session but is not marked @pytest.mark.shares_association: "
            "mark it if it observes nothing about the association, else use modality",
            pytrace=False,
        )
    return _module_find_session


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`corpus_key`: one case per item of the run's corpus (keys do not depend on the seed, so known at collection)."""
    if "corpus_key" in metafunc.fixturenames:
        metafunc.parametrize("corpus_key", keys(_corpus_size(metafunc.config)))


def _corpus_size(config: pytest.Config) -> str:
    """The profile's [corpus] size, read from the run's context; "small" when the suites run without a run."""
    run_dir = config.getoption("--patchgate-run", None)
    return RunDir(Path(run_dir)).read_context().corpus_size if run_dir else "small"


@pytest.fixture(scope="session")
def corpus(patchgate_context: SuiteContext) -> Mapping[str, CorpusItem]:
    """The run's corpus, made once per suites process (a clinical one takes seconds and ~50 MB).

    It must be the corpus the manifest records: one made by other code (a stale suites image, another
    numpy) would be sent while the manifest names another, so the run ends as a harness fault.
    """
    context = patchgate_context
    items = reidentify(generate(context.corpus_seed, corpus_size=context.corpus_size), context.corpus_identity).items
    if context.corpus_sha256 and (made := corpus_hash(items)) != context.corpus_sha256:
        pytest.exit(
            f"harness fault: the suites made corpus sha256 {made[:12]}, the run records {context.corpus_sha256[:12]} "
            f"(seed {context.corpus_seed}, size {context.corpus_size}, identity {context.corpus_identity or 'fixed'}): are the suites and the harness the same "
            "installation? (a container's: python -m harness.images --only simulators)",
            returncode=pytest.ExitCode.INTERNAL_ERROR,
        )
    return {item.key: item for item in items}


@pytest.fixture(scope="session")
def scope(patchgate_context: SuiteContext, corpus: Mapping[str, CorpusItem]) -> Scope:
    """Which C-FIND matches are this run's objects ([corpus] identity = "per-run"; all of them when fixed)."""
    return Scope(corpus.values(), patchgate_context.corpus_identity)


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
