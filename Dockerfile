# ltx-bot: Discord and/or Slack bot for LTX Video on fal.
#
#   docker build -t ltx-bot .
#   docker run -d --name ltx-bot -v ltx-data:/data \
#       -e FAL_KEY -e DISCORD_TOKEN -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN ltx-bot
#
# State (the SQLite database, the running processes' heartbeats, console
# outputs) lives on the /data volume. An optional config file is read from /etc/ltx-bot/config.toml
# (mount it read-only). See "Operations" in README.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# Only packages are downloaded (from PyPI): PyAV and Pillow wheels carry their
# own FFmpeg and image libraries, so no system packages are needed.
RUN python -m venv /opt/venv

WORKDIR /src
# Dependencies first, in their own layer: code changes do not reinstall them.
COPY pyproject.toml README* ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY bot ./bot
COPY adapters ./adapters
RUN pip install --no-deps . && rm -rf /src/build

# A fixed, unprivileged user; its home and working directory is the data volume.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin ltx \
    && mkdir -p /data/outputs /etc/ltx-bot \
    && chown -R ltx:ltx /data

# Relative paths in the config resolve under /data; the database is named
# explicitly so a config file copied from a laptop still writes to the volume.
ENV LTX_BOT_DB=/data/ltx-bot.sqlite3
WORKDIR /data
VOLUME ["/data"]
USER ltx:ltx

# Slack HTTP mode listens here (socket mode and Discord need no inbound port).
EXPOSE 3000

# `ltx-bot health` opens the database read-only and checks the heartbeats that
# `ltx-bot run` and `ltx-bot chat` write every 15 s (one file per process under
# /data/heartbeats): a hung event loop turns the container unhealthy, and
# `docker run -it ... chat` is as healthy as `run`.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["ltx-bot", "health"]

# SIGTERM stops the bot gracefully: it stops taking commands, keeps job state
# in the database and resumes unfinished jobs on the next start.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ltx-bot"]
CMD ["run"]
