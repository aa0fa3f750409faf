# syntax=docker/dockerfile:1
# The churnloop image. One image runs every Airflow service, the MLflow server and the
# model server, with exactly the dependencies of uv.lock (`--frozen`: nothing is resolved
# at build time). docker-compose.yaml supplies the production profile's environment.
FROM python:3.11-slim

# libgomp1: LightGBM's OpenMP runtime; curl: the compose healthchecks.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/*

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv

RUN useradd --create-home --uid 50000 --user-group churnloop

WORKDIR /opt/churnloop
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/churnloop/.venv

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

COPY README.md ./
COPY include/ include/
COPY dags/ dags/
COPY plugins/ plugins/
# Written at run time: feature_store.yaml is rendered from the settings, GX keeps uncommitted/.
COPY --chown=churnloop:churnloop feature_repo/ feature_repo/
COPY --chown=churnloop:churnloop great_expectations/ great_expectations/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
    && mkdir -p home/airflow \
    && chown -R churnloop:churnloop home

# The commit the image is built from (`--build-arg GIT_SHA=$(git rev-parse HEAD)`): a model
# version records it, and the production profile refuses to register one without it.
ARG GIT_SHA=unknown
ENV PATH="/opt/churnloop/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    CHURNLOOP_GIT_SHA=${GIT_SHA} \
    CHURNLOOP_HOME=/opt/churnloop/home \
    CHURNLOOP_PROJECT_ROOT=/opt/churnloop \
    AIRFLOW_HOME=/opt/churnloop/home/airflow

USER churnloop
EXPOSE 8000 8080
CMD ["churnloop", "serve"]
