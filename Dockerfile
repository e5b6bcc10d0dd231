# One image for every Lifeline service; the command picks the service:
#   docker run lifeline:dev python -m services.router
# and the `lifeline` command is in it too (docker compose exec notifier lifeline status).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, pinned to what the test suite ran with (requirements.lock, written by
# infra/lock_requirements.py): a layer that changes only when the lock does.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY schemas ./schemas
# The code, with what it reads at run time beside it: Alembic's env.py and script template
# (services/runtime/migrations), the notifier's templates (services/notifier/templates).
COPY services ./services
# The shipped configuration and the FAQ it names (tiers.faq_file, relative to lifeline.yaml).
COPY lifeline.yaml faq.yaml ./
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home /app lifeline \
    && mkdir -p /data /backups && chown lifeline /data /backups

# /data (LIFELINE_HOME) and /backups belong to the service's user; a new named volume mounted
# there starts with that ownership.
USER lifeline
# 0.0.0.0: reachable from the other containers. Health, readiness and metrics on 9000; the
# gateway (8400) and the status page (8401) bind their own hosts (set in docker-compose.yml).
ENV LIFELINE_HOME=/data LIFELINE_HEALTH_HOST=0.0.0.0 LIFELINE_HEALTH_PORT=9000 MPLCONFIGDIR=/tmp/matplotlib \
    LIFELINE_CONFIG=/app/lifeline.yaml
EXPOSE 9000
CMD ["python", "-m", "services.router"]
