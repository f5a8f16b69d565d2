# The project's one image: the worker and the starter run from it (docker-compose.yml),
# and so can the sandbox. Temporal runs from Temporal's own images.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md starter.py worker.py ./
COPY enforcer ./enforcer
COPY workflows ./workflows
COPY activities ./activities
COPY commands ./commands
# The worker container's healthcheck (docker-compose.yml).
COPY scripts/worker_health.py ./scripts/
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 1000 enforcer \
    && mkdir /data && chown enforcer /data

USER enforcer
ENV ENFORCER_DATA_DIR=/data PYTHONUNBUFFERED=1
VOLUME /data
CMD ["python", "worker.py"]
