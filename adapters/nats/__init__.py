"""The NATS edge: the embedded server, streams, command ingest, the micro service, event relay and client."""
