# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
COPY flows ./flows
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_HOME=/app/data/prefect \
    DIGEST_DB_URL=sqlite:////app/data/digest.db \
    DIGEST_OUTPUT_DIR=/app/output
RUN useradd --create-home --uid 10001 digest \
 && mkdir -p /app/data /app/output \
 && chown -R digest:digest /app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
VOLUME ["/app/data", "/app/output"]
ENTRYPOINT ["digest"]
CMD ["run"]
