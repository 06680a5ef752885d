# One image for every chakong service; the compose file picks the module.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml ./
COPY protos ./protos
COPY services ./services
RUN pip install . && useradd --system --uid 10001 chakong && mkdir -p /data /pki && chown chakong /data /pki
COPY config ./config

# The source revision chakong_build_info shows (docker-compose.yml passes it).
ARG CHAKONG_REVISION=unknown
ENV CHAKONG_REVISION=$CHAKONG_REVISION

USER chakong
ENV DATA_DIR=/data
