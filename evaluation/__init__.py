"""Measurement helpers shared by ``recipes/`` (training) and ``benchmarks/`` (reports).

Neither imports the other's private modules: what both need lives here. Like the recipes and
the benchmarks, this package is run from a checkout and is not part of the ``affect`` wheel.
"""
