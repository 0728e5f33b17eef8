"""The pure domain core: stance rules, the statement and timeline folds, roll-ups.

Nothing here does I/O or imports anything outside this package, so every
rule can be tested (and property-tested) without a server.
"""
