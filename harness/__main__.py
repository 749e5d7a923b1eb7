"""`python -m harness`: the `patchgate` command without its console script."""

import sys

from harness.cli import main

sys.exit(main())
