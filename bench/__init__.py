"""Reproducible benchmarks; each writes a table and records it in RESULTS.md."""
