FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY domain ./domain
COPY services ./services
COPY projections ./projections
COPY adapters ./adapters
RUN pip install --no-cache-dir -c requirements.lock .
# The relay keeps the ledger's signing key here, on a volume (docker-compose.yml).
RUN mkdir -p /var/lib/kadaster && chown nobody /var/lib/kadaster
USER nobody
ENTRYPOINT ["kadaster"]
