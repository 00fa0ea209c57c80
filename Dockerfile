# voicebox: CPU image by default; for NVIDIA GPUs build with
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#                --build-arg CUDA_GRAPHS=1 -t voicebox:cuda .
# (CUDA_GRAPHS=1 adds faster-qwen3-tts from requirements-cuda.txt: CUDA-graph decoding.)
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG CUDA_GRAPHS=0

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VOICEBOX_DATA_DIR=/data \
    HF_HOME=/hf-cache \
    GRADIO_ANALYTICS_ENABLED=False

# gcc and the C headers: resemblyzer's webrtcvad dependency is only published as source.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg libsndfile1 curl python3 python3-venv python3-pip \
       gcc libc6-dev python3-dev \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 voicebox \
    && mkdir -p /data /hf-cache /app \
    && chown voicebox:voicebox /data /hf-cache /app

WORKDIR /app
COPY --chown=voicebox:voicebox requirements.txt requirements-cuda.txt ./
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt \
    && if [ "$CUDA_GRAPHS" = "1" ]; then /opt/venv/bin/pip install -r requirements-cuda.txt; fi
ENV PATH=/opt/venv/bin:$PATH
COPY --chown=voicebox:voicebox . .

USER 1000
VOLUME ["/data", "/hf-cache"]
EXPOSE 7860
# Only inside the container does the app listen on all interfaces (port publishing needs it);
# voicebox still refuses that without VOICEBOX_AUTH, so pass -e VOICEBOX_AUTH=user:password.
ENV VOICEBOX_HOST=0.0.0.0 \
    GRADIO_SERVER_NAME=0.0.0.0
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s CMD ["curl", "-fsS", "http://127.0.0.1:7860/health"]
CMD ["python", "-m", "voicebox"]
