"""`python -m labeling` runs the same command line as `labeling`."""

import sys

from labeling.cli import main

sys.exit(main())
