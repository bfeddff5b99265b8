"""The edge of the kadaster: NATS, SQL read models, HTTP, files, the CLI and the wiring."""
