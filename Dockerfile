FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY domain ./domain
COPY services ./services
COPY projections ./projections
COPY adapters ./adapters
RUN pip install --no-cache-dir -c requirements.lock .
USER nobody
ENTRYPOINT ["kadaster"]
