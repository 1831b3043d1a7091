# The platform's processes for docker-compose.yml (Kafka, Postgres and ClickHouse run as their
# own services there). llama-cpp-python is built with portable AVX2 flags (infra/build-llama.sh).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN house=$(bash infra/build-llama.sh python) \
    && pip install --no-cache-dir --find-links "$house" --only-binary llama-cpp-python .
ENV LVLUP_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["lvlup"]
