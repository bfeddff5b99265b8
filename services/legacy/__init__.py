"""The legacy kadaster register: check its rows against each other, plan commands, run them, write letters."""

DEFAULT_BATCH_SIZE = 500
"""Commands recorded per transaction when a legacy register is imported."""
