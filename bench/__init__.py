"""Benchmarks, run on demand from the repository's root: `python -m bench.honest` (README.md)."""
