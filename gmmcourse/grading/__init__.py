"""The hardened autograder shared by every unit.

Trusted side: :mod:`runner` (loads hidden tests and references, starts sandboxed workers, compares,
writes results.json). Untrusted side: :mod:`worker` (a standalone script run next to the student's
code). The two talk through :mod:`wire`, a JSON encoding of plain numbers and arrays (no pickle).
"""
