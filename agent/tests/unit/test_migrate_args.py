"""migrate's arguments: what the operator passes from spec.target is checked before any work."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from datamigrate_agent import migrate
from datamigrate_agent.errors import PermanentError


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    migrate.add_arguments(parser)
    base = ["--workspace", str(tmp_path), "--target", "duckdb", "--project-name", "p"]
    return parser.parse_args([*base, *extra])


@pytest.mark.parametrize("schema", ["analytics", "_s", "Sales_2024", "a" * 63])
def test_an_identifier_schema_is_accepted(tmp_path: Path, schema: str) -> None:
    assert migrate.config_from_args(_args(tmp_path, "--schema", schema)).schema == schema


@pytest.mark.parametrize(
    "schema",
    [
        'main"; create table main.pwned as select 42 as x; --',
        "{{ env_var('DATAMIGRATE_LLM_API_KEY') }}",
        "a.b",
        "9lives",
        "",
        "a" * 64,
        "sales\n",
        "ventas_año",
    ],
)
def test_a_schema_that_is_not_an_identifier_is_a_permanent_error(
    tmp_path: Path, schema: str
) -> None:
    with pytest.raises(PermanentError, match="spec.target.schema must be an identifier") as err:
        migrate.config_from_args(_args(tmp_path, "--schema", schema))
    assert (err.value.code, err.value.exit_code) == ("InvalidArguments", 65)
