"""Benchmarks that print measurements (run as scripts: python bench/NAME.py)."""
