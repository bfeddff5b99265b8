"""The transparency ledger's storage, signing keys, checkpoint publishing and its role loop."""
