"""`python -m simulators.reference_modality`: run the reference modality, or `ctl` a running one."""

import sys

from simulators.reference_modality.cli import main

sys.exit(main())
