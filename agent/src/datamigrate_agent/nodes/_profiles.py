"""profiles.yml per target: secrets only ever as ``env_var()`` calls, never as values."""

from __future__ import annotations

from typing import Any

__all__ = ["profile_for", "DUCKDB_PATH_ENV"]

DUCKDB_PATH_ENV = "DATAMIGRATE_DUCKDB_PATH"


def _env(name: str, default: str | None = None) -> str:
    if default is None:
        return "{{ env_var('" + name + "') }}"
    return "{{ env_var('" + name + "', '" + default + "') }}"


def _int_env(name: str, default: int) -> str:
    return "{{ env_var('" + name + "', '" + str(default) + "') | int }}"


def _output(target: str, schema: str, duckdb_default: str) -> dict[str, Any]:
    if target == "duckdb":
        return {"type": "duckdb", "path": _env(DUCKDB_PATH_ENV, duckdb_default),
                "schema": schema, "threads": 2}  # fmt: skip
    if target in {"postgres", "redshift"}:
        prefix = "DATAMIGRATE_PG" if target == "postgres" else "DATAMIGRATE_REDSHIFT"
        port = 5432 if target == "postgres" else 5439
        return {
            "type": target, "host": _env(f"{prefix}_HOST", "127.0.0.1"),
            "port": _int_env(f"{prefix}_PORT", port), "user": _env(f"{prefix}_USER"),
            "password": _env(f"{prefix}_PASSWORD", ""), "dbname": _env(f"{prefix}_DBNAME"),
            "schema": schema, "threads": 2,
        }  # fmt: skip
    if target == "snowflake":
        return {
            "type": "snowflake", "account": _env("DATAMIGRATE_SNOWFLAKE_ACCOUNT"),
            "user": _env("DATAMIGRATE_SNOWFLAKE_USER"),
            "password": _env("DATAMIGRATE_SNOWFLAKE_PASSWORD"),
            "role": _env("DATAMIGRATE_SNOWFLAKE_ROLE", "TRANSFORMER"),
            "database": _env("DATAMIGRATE_SNOWFLAKE_DATABASE"),
            "warehouse": _env("DATAMIGRATE_SNOWFLAKE_WAREHOUSE"), "schema": schema, "threads": 4,
        }  # fmt: skip
    if target == "bigquery":
        return {
            "type": "bigquery", "method": "service-account",
            "keyfile": _env("DATAMIGRATE_BIGQUERY_KEYFILE"),
            "project": _env("DATAMIGRATE_BIGQUERY_PROJECT"), "dataset": schema, "threads": 4,
        }  # fmt: skip
    if target == "databricks":
        return {
            "type": "databricks", "host": _env("DATAMIGRATE_DATABRICKS_HOST"),
            "http_path": _env("DATAMIGRATE_DATABRICKS_HTTP_PATH"),
            "token": _env("DATAMIGRATE_DATABRICKS_TOKEN"),
            "catalog": _env("DATAMIGRATE_DATABRICKS_CATALOG", "main"), "schema": schema,
            "threads": 4,
        }  # fmt: skip
    raise ValueError(f"no profile for target {target}")


def profile_for(profile: str, target: str, schema: str, duckdb_default: str) -> dict[str, Any]:
    """The profiles.yml document for one target."""
    return {profile: {"target": target, "outputs": {target: _output(target, schema,
                                                                    duckdb_default)}}}  # fmt: skip
