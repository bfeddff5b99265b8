"""The HTTP edge: the read-only FastAPI query API and the roles' health checks."""
