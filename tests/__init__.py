"""The test suite. Run it all with `python3 -m tests` (sets up .venv on first use)."""
