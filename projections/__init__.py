"""Read models built from the event store's notification log, one module per question."""
