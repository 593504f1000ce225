# receiver: SMS delivery-report webhook receiver.
#   docker build -t receiver .
#   docker run -p 8000:8000 -v receiver-data:/data receiver
# /data holds receiver.toml (created on first start if absent) and the SQLite file.

FROM python:3.11-slim-bookworm AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
# receiver/store/schema.sql is a symlink to ../../schema.sql: schema.sql must sit at
# /src/schema.sql before the build so the wheel gets the real file.
COPY pyproject.toml README.md schema.sql ./
COPY receiver/ ./receiver/

RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /src \
    && test -s /opt/venv/lib/python3.11/site-packages/receiver/store/schema.sql \
    && /opt/venv/bin/receiver --help >/dev/null


FROM python:3.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 receiver \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /data --no-create-home --shell /usr/sbin/nologin receiver \
    && mkdir -p /data \
    && chown 10001:10001 /data \
    && chmod 0700 /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["receiver"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
