# guard: the engagement guard service, CPU only.
FROM python:3.11-slim

RUN apt-get update && apt-get install -y --no-install-recommends redis-server tzdata \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# torch is pinned to 2.13.0, CPU build: pass your CPU wheel index (or a local wheel folder) in
# TORCH_PIP_ARGS, e.g. --build-arg TORCH_PIP_ARGS="--index-url <cpu wheel index>"; the plain
# default index serves a multi-GB CUDA build.
ARG TORCH_PIP_ARGS=""
RUN pip install --no-cache-dir $TORCH_PIP_ARGS "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY guard ./guard
COPY models ./models
RUN pip install --no-cache-dir . "torch==2.13.0"

ENV GUARD_LISTEN=0.0.0.0:50051 \
    GUARD_HTTP_LISTEN=0.0.0.0:8080 \
    GUARD_DATA_DIR=/data \
    GUARD_SENTIMENT_MODEL=/app/models/guard-sentiment-zh-en \
    HF_HOME=/tmp/huggingface
RUN mkdir -p /data && chown nobody /data
VOLUME /data
EXPOSE 50051 8080 9464
USER nobody
ENTRYPOINT ["guard"]
CMD ["serve"]
