# mesobot: the Telegram bot, long polling. The enquiry database lives on the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MESOBOT_DB=/data/mesobot.sqlite3

RUN useradd --create-home --uid 10001 mesobot \
    && mkdir /data && chown mesobot:mesobot /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY knowledge ./knowledge
COPY handlers ./handlers
RUN pip install --no-cache-dir .

USER mesobot
VOLUME ["/data"]
CMD ["python", "-m", "bot", "run"]
