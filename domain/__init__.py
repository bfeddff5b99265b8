"""The kadaster's domain: aggregates, their events and rules, and the allocation policies."""
