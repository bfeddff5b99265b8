"""The CloudEvents the register publishes: domain events, outcomes and ledger checkpoints."""
