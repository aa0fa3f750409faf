"""DuckDB, the engine of Feast's offline store here: one connection per process, and the lake on S3.

Importing this module makes every forked child open its own DuckDB connection;
``prepare_for_lake`` gives the connection httpfs (from its PyPI package) and the lake's S3
credentials (as boto3 resolves them) when the lake is on S3.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

import boto3
import duckdb
import duckdb_extension_httpfs
import ibis

from churnloop import storage
from churnloop.settings import Settings

__all__ = ["HTTPFS_FILE", "LAKE_S3_SETTINGS", "prepare_for_lake"]

log = logging.getLogger(__name__)

LAKE_S3_SETTINGS = "churnloop_lake"
"""Name of the DuckDB secret (endpoint, region, keys) scoped to the lake's bucket."""
HTTPFS_FILE = (
    Path(duckdb_extension_httpfs.__file__).parent
    / "extensions"
    / f"v{duckdb.__version__}"
    / "httpfs.duckdb_extension"
)
"""The httpfs build of the PyPI package, for the DuckDB version installed beside it."""


def _forget_the_parents_connection() -> None:
    ibis.options.default_backend = None


os.register_at_fork(after_in_child=_forget_the_parents_connection)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _load_httpfs(connection: duckdb.DuckDBPyConnection) -> None:
    """Install httpfs from the package file and load it, unless the connection has it."""
    loaded = connection.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
    ).fetchone()
    if loaded and loaded[0]:
        return
    if not HTTPFS_FILE.is_file():
        raise RuntimeError(
            f"DuckDB {duckdb.__version__} has no httpfs extension at {HTTPFS_FILE}: "
            "duckdb and duckdb-extension-httpfs must have the same version (see pyproject.toml)"
        )
    connection.execute(f"INSTALL {_sql_string(str(HTTPFS_FILE))}")
    connection.execute("LOAD httpfs")
    log.info("DuckDB httpfs loaded from %s", HTTPFS_FILE)


def _secret_sql(lake: storage.Store) -> str:
    """``CREATE OR REPLACE SECRET`` for the lake's bucket with boto3's credentials."""
    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise RuntimeError(
            f"no AWS credentials for the lake s3://{lake.bucket}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a profile or an instance role, as for boto3"
        )
    frozen = credentials.get_frozen_credentials()
    options = {
        "TYPE": "s3",
        "SCOPE": _sql_string(f"s3://{lake.bucket}"),
        "KEY_ID": _sql_string(frozen.access_key),
        "SECRET": _sql_string(frozen.secret_key),
        "REGION": _sql_string(lake.s3_region),
    }
    if frozen.token:
        options["SESSION_TOKEN"] = _sql_string(frozen.token)
    if lake.s3_endpoint_url:
        endpoint = urlparse(lake.s3_endpoint_url)
        options["ENDPOINT"] = _sql_string(endpoint.netloc)
        options["USE_SSL"] = "true" if endpoint.scheme == "https" else "false"
        options["URL_STYLE"] = "'path'"
    body = ", ".join(f"{key} {value}" for key, value in options.items())
    return f"CREATE OR REPLACE SECRET {LAKE_S3_SETTINGS} ({body})"


def prepare_for_lake(settings: Settings) -> None:
    """Make ibis's default DuckDB connection, the one Feast reads through, reach the lake."""
    lake = storage.lake(settings)
    if not lake.is_s3:
        return
    connection = ibis.get_backend().con
    _load_httpfs(connection)
    connection.execute(_secret_sql(lake))
