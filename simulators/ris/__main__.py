"""`python -m simulators.ris`: run the RIS simulator until SIGTERM/SIGINT."""

import sys

from simulators.ris.cli import main

sys.exit(main())
