"""Suites: a study template run on many data sets, one normal study each, and the verdicts combined across
them (spec → run → verdict_rows → aggregate; the CLI is :mod:`gbreg.cli_suite`)."""
