"""The embedded reference device: a PACS simulator whose behaviour comes from a named patch variant.

`clean` is the device as it was; each other variant is a "patch" that changes (or, for
`clean-rebuild`, does not change) one observable behaviour, so patchgate can be shown to
tell them apart:

    python -m simulators.reference --variant store-warning --ae-title REF --port 11112 \\
        --storage /tmp/ref [--destination AE=host:port ...] [--tls-dir PKI] \\
        [--audit udp://HOST:PORT] [--audit-tls tls://HOST:PORT] [--known-peer AE ...] [--identity-secret S]

Its security posture (TLS, access control, user identity, audit trail) is part of the variant too:
the command line says what it can use (a PKI, where the audit repository listens, its peers),
the variant decides what it does with it.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from simulators._net import LOOPBACK
from simulators.audit.sender import Auditor, parse_target
from simulators.commitment import PUSH_MODEL
from simulators.identity.credentials import policy_from_credentials, standard_credentials
from simulators.pacs import DUPLICATES, PacsConfig, PacsSimulator, Quirks, build_parser, parse_destinations, serve
from simulators.pki import load_pki

__all__ = [
    "DESCRIPTIONS",
    "IDENTITY_SECRET",
    "PERFORMANCE_METRICS",
    "POSTURES",
    "ROBUSTNESS_INPUTS",
    "VARIANTS",
    "Posture",
    "build",
    "main",
]

# The secret the reference device's user identity credentials derive from (simulators.identity.credentials).
IDENTITY_SECRET = "patchgate-reference"


@dataclass(frozen=True)
class Posture:
    """The reference device's security behaviour; the default is the device as shipped."""

    tls: bool = False  # requires DICOM TLS (client certificate too); its audit trail then goes over TLS
    audit: bool = True  # sends DICOM audit messages to the audit record repository
    known_peers: bool = False  # admits only its known peers, and checks the called AE title


_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
# Seconds it waits after an N-ACTION-RSP before reporting on that association ("auto": a requester that
# releases at once gets the report on a new one). A release takes under 0.1 s here; the wait counts only
# the time this process ran (simulators.stall), so a loaded machine's slow release is not taken for an
# association kept open either: which association a report takes is an observation. (1.0 s until session 16.)
_COMMITMENT_DELAY = 0.5
_STUDY_DESCRIPTION = 0x00081030
_SERIES_NUMBER = 0x00200011
_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
# JPEG 2000 lossless and lossy, and HTJ2K lossless: no corpus object uses them, only the negotiation suite sees them.
_JPEG_2000 = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201"})

VARIANTS: Mapping[str, Quirks] = types.MappingProxyType(
    {
        "clean": Quirks(),
        "clean-rebuild": Quirks(),
        "reject-sop": Quirks(rejected_sop_classes=frozenset({_SECONDARY_CAPTURE})),
        "store-warning": Quirks(store_status=0xB000),
        "find-case": Quirks(pn_case_insensitive=False),
        "drop-attribute": Quirks(drop_on_retrieve=frozenset({_STUDY_DESCRIPTION})),
        "drop-on-store": Quirks(drop_on_store=frozenset({_STUDY_DESCRIPTION})),
        "move-failure": Quirks(fail_first_move_suboperation=True),
        "move-reencode": Quirks(move_transfer_syntax=_EXPLICIT_VR_LITTLE_ENDIAN),
        "iod-invalid": Quirks(decimal_is_on_move=frozenset({_SERIES_NUMBER})),
        "get-warning": Quirks(get_warning_suboperations=1),
        "crash-on-find": Quirks(crash_on_find=True),
        "availability": Quirks(instance_availability="NEARLINE"),
        "charset": Quirks(answer_charset="ISO_IR 100"),
        "tls-required": Quirks(),
        "no-audit": Quirks(),
        "known-peers": Quirks(),
        "implementation-version": Quirks(implementation_version_name="REFDEVICE_2_0"),
        "no-jpeg2000": Quirks(rejected_transfer_syntaxes=_JPEG_2000),
        # Storage commitment (suites/commitment; simulators.commitment): the SCP's own failures.
        "commit-nothing": Quirks(commit_nothing=True),
        "commitment-rejected": Quirks(rejected_sop_classes=frozenset({PUSH_MODEL})),
        "report-before-response": Quirks(report_before_response=True),
        # Performance (issue 12; the performance phase shows them, see PERFORMANCE_METRICS).
        "slow-store": Quirks(store_slowdown=0.20),
        "slow-find": Quirks(find_slowdown=0.10),
        "leak": Quirks(leak_per_association=262144),
        # Robustness (issue 12; the robustness phase shows them, see ROBUSTNESS_INPUTS). pynetdicom's default maximum:
        # the clean device announces 0 (unlimited), so only these can be sent a P-DATA-TF over their maximum.
        "crash-on-oversized-pdu": Quirks(maximum_pdu_size=16382, crash_on_oversized_pdu=True),
        "hang-on-unterminated-sequence": Quirks(hang_on_unterminated_sequence=True),
        "pdu-limit": Quirks(maximum_pdu_size=16382),
        # Several behaviours at once, for the demo of a patch that regressed (`--demo regression`).
        "regression": Quirks(
            store_status=0xB000,
            pn_case_insensitive=False,
            drop_on_retrieve=frozenset({_STUDY_DESCRIPTION}),
        ),
    }
)

DESCRIPTIONS: Mapping[str, str] = types.MappingProxyType(
    {
        "clean": "the device as shipped: standard PACS behaviour",
        "clean-rebuild": "a rebuild with a security fix that changes no DICOM behaviour",
        "reject-sop": "rejects Secondary Capture Image Storage at association negotiation",
        "store-warning": "answers every C-STORE with warning 0xB000 instead of success",
        "find-case": "C-FIND matches patient names case-sensitively",
        "drop-attribute": "drops StudyDescription (0008,1030) from objects it sends by C-MOVE and C-GET",
        "drop-on-store": "drops StudyDescription (0008,1030) from objects as it stores them (an ingest filter)",
        "move-failure": "reports the first sub-operation of every C-MOVE as failed",
        "move-reencode": "C-MOVE sends every object re-encoded to Explicit VR Little Endian (RLE decompressed)",
        "iod-invalid": 'C-MOVE sends SeriesNumber (0020,0011) as "1.0": the same number, an invalid value for IS',
        "get-warning": "counts the first sub-operation of every C-GET as a warning: final 0xB000, every object delivered",
        "crash-on-find": "the process exits on its first C-FIND (a patch that crashes the device)",
        "availability": "C-FIND answers InstanceAvailability NEARLINE instead of ONLINE",
        "charset": "C-FIND answers every name in ISO_IR 100 (Latin-1): Japanese and Chinese characters become '?'",
        "tls-required": "requires DICOM TLS with a client certificate; sends its audit trail over TLS (a hardening)",
        "no-audit": "silently stops sending audit messages (a security regression)",
        "known-peers": "admits only known calling AE titles and checks the called AE title (a hardening)",
        "implementation-version": "an upgrade: announces Implementation Version Name REFDEVICE_2_0 at association",
        "no-jpeg2000": "no longer accepts JPEG 2000 transfer syntaxes for storage (a codec removed)",
        "commit-nothing": "storage commitment reports every instance failed (0x0110 processing failure), held or not",
        "commitment-rejected": "no longer offers storage commitment: the Push Model context is rejected at negotiation",
        "report-before-response": "sends the storage commitment report before the N-ACTION response (out of order)",
        "slow-store": "answers C-STORE 20 % slower, like an on-access virus scanner (the performance phase shows it)",
        "slow-find": "answers C-FIND 10 % slower (the performance phase shows it)",
        "leak": "keeps 256 KiB of memory for every association it accepts, never freed (the performance phase shows it)",
        "crash-on-oversized-pdu": "announces a 16382-byte maximum PDU and exits (code 70) on a P-DATA-TF over it "
        "(the robustness phase shows it)",
        "hang-on-unterminated-sequence": "stops serving anyone on a data set whose undefined-length sequence never "
        "ends (the robustness phase shows it)",
        "pdu-limit": "announces a 16382-byte maximum PDU, and survives a P-DATA-TF over it: the crash fixed",
        "regression": "store-warning, find-case and drop-attribute at once: a patch that broke several things",
    }
)

# Variants whose change only the performance phase shows, with the metric globs that show it:
# `--demo VARIANT` switches the phase on for these metrics (harness.demo).
PERFORMANCE_METRICS: Mapping[str, tuple[str, ...]] = types.MappingProxyType(
    {
        # store.study.parallel moves less (1.06-1.12x): a sleeping association leaves the CPU to the others
        "slow-store": ("store.study",),
        "slow-find": ("find.*",),
        "leak": ("association.setup", "memory.*"),
    }
)

# Variants whose change only the robustness phase shows, with the corpus input globs that show it:
# `--demo VARIANT` switches the phase on for these inputs (harness.demo).
ROBUSTNESS_INPUTS: Mapping[str, tuple[str, ...]] = types.MappingProxyType(
    {
        "crash-on-oversized-pdu": ("pdu.pdata.over-max",),
        "hang-on-unterminated-sequence": ("ds.*.sq-unterminated",),
        "pdu-limit": ("pdu.pdata.over-max",),
    }
)


POSTURES: Mapping[str, Posture] = types.MappingProxyType(
    {
        "tls-required": Posture(tls=True),
        "no-audit": Posture(audit=False),
        "known-peers": Posture(known_peers=True),
    }
)


def build(
    variant: str,
    *,
    ae_title: str,
    port: int,
    storage: str | Path,
    host: str = LOOPBACK,
    destinations: Mapping[str, tuple[str, int]] | None = None,
    tls_dir: str | Path | None = None,
    audit: str = "",
    audit_tls: str = "",
    known_peers: Sequence[str] = (),
    identity_secret: str = "",
    duplicates: str = "overwrite",
) -> PacsSimulator:
    """The reference device (not started) in `variant`; KeyError naming the known variants if unknown.

    `tls_dir` (a simulators.pki directory), `audit`/`audit_tls` (udp:// and tls:// targets of the
    audit repository), `known_peers` and `identity_secret` are what it may use; `variant` decides.
    `duplicates` is how it is configured, whatever the variant (PacsConfig.duplicates).
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    posture = POSTURES.get(variant, Posture())
    pki = load_pki(Path(tls_dir)) if tls_dir else None
    if posture.tls and pki is None:
        raise ValueError(f"variant {variant!r} requires TLS: give --tls-dir")
    auditor = None
    target = audit_tls if posture.tls and audit_tls else audit
    if posture.audit and target:
        client = pki.client_context() if pki is not None and target.startswith("tls://") else None
        auditor = Auditor(parse_target(target), ae_title, client)
    identity = None
    if identity_secret:  # offered identities are checked; none offered is fine
        identity = policy_from_credentials(standard_credentials(identity_secret), required=False)
    config = PacsConfig(
        ae_title=ae_title,
        host=host,
        port=port,
        storage=Path(storage),
        destinations=dict(destinations or {}),
        quirks=VARIANTS[variant],
        ssl_context=pki.server_context() if posture.tls and pki is not None else None,
        client_ssl_context=pki.client_context() if posture.tls and pki is not None else None,
        known_peers=frozenset(known_peers) if posture.known_peers else frozenset(),
        check_called_ae=posture.known_peers,
        identity=identity,
        auditor=auditor,
        commitment_delay=_COMMITMENT_DELAY,
        duplicates=duplicates,
    )
    return PacsSimulator(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("python -m simulators.reference", "Run the reference device in one variant.")
    parser.add_argument("--variant", required=True, help=f"one of: {', '.join(VARIANTS)}")
    parser.add_argument("--tls-dir", help="a simulators.pki directory (used by variants that require TLS)")
    parser.add_argument("--audit", default="", help="udp://HOST:PORT of the audit record repository")
    parser.add_argument("--audit-tls", default="", help="tls://HOST:PORT of the audit repository (TLS variants)")
    parser.add_argument("--known-peer", action="append", default=[], help="a calling AE title it knows (repeat)")
    parser.add_argument("--identity-secret", default="", help="checks offered user identities against it")
    parser.add_argument(
        "--duplicates",
        choices=DUPLICATES,
        default="overwrite",
        help="a C-STORE of an object it holds: overwrite it, keep the first (success), or refuse it (0x0111)",
    )
    args = parser.parse_args(argv)
    if args.variant not in VARIANTS:
        print(
            f"simulators.reference: unknown variant {args.variant!r}; known: {', '.join(VARIANTS)}",
            file=sys.stderr,
        )
        return 2
    try:
        device = build(
            args.variant,
            ae_title=args.ae_title,
            host=args.host,
            port=args.port,
            storage=args.storage,
            destinations=parse_destinations(parser, args.destination),
            tls_dir=args.tls_dir,
            audit=args.audit,
            audit_tls=args.audit_tls,
            known_peers=args.known_peer,
            identity_secret=args.identity_secret,
            duplicates=args.duplicates,
        )
    except (ValueError, OSError) as exc:  # a bad PKI, audit target or credential: say which
        parser.error(str(exc))
    return serve(device.config, banner=f"reference device, variant {args.variant}: {DESCRIPTIONS[args.variant]}")


if __name__ == "__main__":
    sys.exit(main())
