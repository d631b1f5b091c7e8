"""`python3 -m tests`: set up .venv on first use, then run the whole suite (see tests/runner.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling.bootstrap import run_tests

run_tests(sys.argv[1:])
