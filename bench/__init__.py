"""`make bench`: the worker measured against its limit and its peers, in one run.

Every headline figure is a ratio against a baseline measured in the same run, because
absolute times on a shared 2-core machine drift. Nothing here asserts; it reports.
Entry point: `python -m bench.run` (see docs/benchmarks.md).
"""
