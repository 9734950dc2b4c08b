# adwatch production image: Python slim, Debian's Chromium, non-root, data on a volume.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ADWATCH_DATA_DIR=/data \
    ADWATCH_CHROMIUM_PATH=/usr/bin/chromium \
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# Chromium comes from Debian, never from `playwright install`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-dejavu-core ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 adwatch
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY adwatch ./adwatch
COPY crawler ./crawler
COPY matching ./matching
COPY legal_policy ./legal_policy
COPY storage ./storage
COPY alembic ./alembic
# Editable install: the Alembic migrations stay beside the code (storage/db.py finds them).
RUN pip install -e . && mkdir -p /data && chown adwatch:adwatch /data

USER adwatch
VOLUME ["/data"]
# The default command runs the scheduler (crawl schedules, the daily purge); the image runs
# any other command too, e.g.
#   docker run -v adwatch-data:/data IMAGE db upgrade
#   docker run -v adwatch-data:/data -e ADWATCH_USER=ines IMAGE crawl --authorisation 1 --site SITE
ENTRYPOINT ["adwatch"]
CMD ["serve"]
