"""Reproducible performance benchmarks: ``python -m benchmarks.run`` prints the table.

Not collected by the test run (pytest's testpaths is ``tests/``).
"""
