# outdial: the API server and dialer workers in one image.
# Build: docker build -t outdial .     Run the stack: docker compose up (see compose.yaml).
FROM python:3.11-slim-bookworm

# flite and espeak-ng speak the templates' prompts, sox converts audio; the SIP carrier and
# Whisper recognition need nothing else from the OS.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        flite espeak-ng sox \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /var/lib/outdial outdial
WORKDIR /opt/outdial
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".[postgres,speech,sip]"

USER outdial
WORKDIR /var/lib/outdial
# Inside a container the API must listen beyond loopback; recordings and the SMS file go to
# a volume the API and the workers share.
ENV OUTDIAL_HOST=0.0.0.0 \
    OUTDIAL_PORT=8080 \
    OUTDIAL_RECORDINGS_DIR=/var/lib/outdial/recordings \
    OUTDIAL_SMS_FILE=/var/lib/outdial/sms-outbox.jsonl \
    OUTDIAL_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=4).status != 200)"]
ENTRYPOINT ["outdial"]
CMD ["serve", "--no-worker"]
