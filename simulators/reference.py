"""The embedded reference device: a PACS simulator whose behaviour comes from a named patch variant.

`clean` is the device as it was; each other variant is a "patch" that changes (or, for
`clean-rebuild`, does not change) one observable behaviour, so patchgate can be shown to
tell them apart:

    python -m simulators.reference --variant store-warning --ae-title REF --port 11112 \\
        --storage /tmp/ref [--destination AE=host:port ...]
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

from simulators._net import LOOPBACK
from simulators.pacs import PacsConfig, PacsSimulator, Quirks, build_parser, parse_destinations, serve

__all__ = ["DESCRIPTIONS", "VARIANTS", "build", "main"]

_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_STUDY_DESCRIPTION = 0x00081030

VARIANTS: Mapping[str, Quirks] = types.MappingProxyType(
    {
        "clean": Quirks(),
        "clean-rebuild": Quirks(),
        "reject-sop": Quirks(rejected_sop_classes=frozenset({_SECONDARY_CAPTURE})),
        "store-warning": Quirks(store_status=0xB000),
        "find-case": Quirks(pn_case_insensitive=False),
        "drop-attribute": Quirks(drop_on_retrieve=frozenset({_STUDY_DESCRIPTION})),
        "move-failure": Quirks(fail_first_move_suboperation=True),
        "crash-on-find": Quirks(crash_on_find=True),
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
        "move-failure": "reports the first sub-operation of every C-MOVE as failed",
        "crash-on-find": "the process exits on its first C-FIND (a patch that crashes the device)",
        "regression": "store-warning, find-case and drop-attribute at once: a patch that broke several things",
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
) -> PacsSimulator:
    """The reference device (not started) in `variant`; KeyError naming the known variants if unknown."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    config = PacsConfig(
        ae_title=ae_title,
        host=host,
        port=port,
        storage=Path(storage),
        destinations=dict(destinations or {}),
        quirks=VARIANTS[variant],
    )
    return PacsSimulator(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("python -m simulators.reference", "Run the reference device in one variant.")
    parser.add_argument("--variant", required=True, help=f"one of: {', '.join(VARIANTS)}")
    args = parser.parse_args(argv)
    if args.variant not in VARIANTS:
        print(
            f"simulators.reference: unknown variant {args.variant!r}; known: {', '.join(VARIANTS)}",
            file=sys.stderr,
        )
        return 2
    device = build(
        args.variant,
        ae_title=args.ae_title,
        host=args.host,
        port=args.port,
        storage=args.storage,
        destinations=parse_destinations(parser, args.destination),
    )
    return serve(device.config, banner=f"reference device, variant {args.variant}: {DESCRIPTIONS[args.variant]}")


if __name__ == "__main__":
    sys.exit(main())
