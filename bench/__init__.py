"""Benchmarks: each script compares against a baseline in the same run; figures live in RESULTS.md."""
