# One image for both services of docker-compose.yml: the Rasa server (with the Twilio
# connectors) and the action server. The model is trained into the image at build time.
#   docker compose build        (see README, "Production")

# ---- build: the pinned dependencies in /app/.venv (same layout as `make setup`)
FROM python:3.10-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock ./
RUN python -m venv .venv \
 && .venv/bin/pip install --quiet "pip==24.0" \
 && .venv/bin/pip install --quiet -r requirements.lock

# ---- runtime
FROM python:3.10-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PATH=/app/.venv/bin:$PATH \
    TF_CPP_MIN_LOG_LEVEL=3 \
    SQLALCHEMY_SILENCE_UBER_WARNING=1 \
    RASA_TELEMETRY_ENABLED=false \
    EVENT_SPOOL_PATH=/app/spool/events.sqlite
WORKDIR /app
COPY --from=build /app/.venv /app/.venv

# The model: trained here from data/, domain.yml, config.yml (fixed seeds: same data, same model).
COPY config.yml domain.yml ./
COPY data ./data
# config.yml's pipeline uses the project's own NLU components
COPY nlu_components ./nlu_components
COPY scripts ./scripts
RUN mkdir -p models && scripts/train_if_needed.sh && rm -rf .rasa

COPY core ./core
COPY actions ./actions
COPY connectors ./connectors
COPY voice/recordings ./voice/recordings
COPY infra ./infra
COPY core ./core
COPY dashboard ./dashboard
COPY endpoints.yml endpoints.prod.yml credentials.yml credentials.prod.yml ./

RUN useradd --create-home --uid 1001 bakame \
 && mkdir -p /app/spool /app/logs \
 && chown bakame /app /app/spool /app/logs
USER bakame
EXPOSE 5005 5055 8080

# Derive every endpoints.prod.yml variable from REDIS_*/POSTGRES_* (or the URLs), then run.
ENTRYPOINT ["python", "-m", "infra.settings", "exec", "--"]
CMD ["python", "-m", "infra.rasa_main", "run", "--model", "models/bakame.tar.gz", "--port", "5005", "--credentials", "credentials.prod.yml", "--endpoints", "endpoints.prod.yml"]
