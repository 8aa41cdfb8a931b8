"""The metadata document: round trip, validation on read, sample data files."""

from __future__ import annotations

import decimal
import json
from pathlib import Path

import pytest

from datamigrate_agent.errors import PermanentError
from datamigrate_agent.metadata import (
    METADATA_VERSION,
    Column,
    ForeignKey,
    KeyConstraint,
    MetadataDocument,
    Source,
    Table,
    dump_metadata,
    iter_sample_rows,
    load_metadata,
    sample_file_name,
    utc_now,
    write_sample_rows,
)


def _table() -> Table:
    return Table(
        schema="dbo",
        name="Order Details",
        columns=[
            Column(name="OrderID", ordinal=1, data_type="int", nullable=False),
            Column(name="UnitPrice", ordinal=2, data_type="money", nullable=False),
            Column(name="Picture", ordinal=3, data_type="image"),
        ],
        primary_key=KeyConstraint(name="PK_Order_Details", columns=["OrderID"]),
    )


def _doc(tmp_path: Path) -> MetadataDocument:
    table = _table()
    rows = [[1, decimal.Decimal("19.9900"), b"\x01\xff"], [2, decimal.Decimal("0.10"), None]]
    table.sample_data = write_sample_rows(tmp_path, table, rows)
    source = Source(kind="script", name="x.sql", extracted_at=utc_now())
    return MetadataDocument(source=source, schemas=["dbo"], tables=[table])


def test_document_round_trips_with_camel_case_keys_and_exact_sample_values(tmp_path: Path) -> None:
    dump_metadata(_doc(tmp_path), tmp_path / "metadata.json")
    raw = json.loads((tmp_path / "metadata.json").read_text())
    assert raw["version"] == METADATA_VERSION
    assert raw["tables"][0]["primaryKey"]["columns"] == ["OrderID"]
    assert raw["tables"][0]["columns"][1]["dataType"] == "money"
    assert raw["tables"][0]["sampleData"]["path"] == "sampledata/dbo.Order Details.jsonl"
    lines = (tmp_path / raw["tables"][0]["sampleData"]["path"]).read_text().splitlines()
    assert lines == ['[1,19.9900,"01ff"]', "[2,0.10,null]"]

    doc = load_metadata(tmp_path / "metadata.json")
    table = doc.table("DBO", "order details")
    assert table is not None and table.sample_data is not None
    assert table.sample_data.row_count == 2
    rows = list(iter_sample_rows(tmp_path, table))
    assert rows[0] == [1, decimal.Decimal("19.9900"), "01ff"]
    assert str(rows[1][1]) == "0.10"


def _broken(tmp_path: Path, edit: object) -> Path:
    dump_metadata(_doc(tmp_path), tmp_path / "metadata.json")
    raw = json.loads((tmp_path / "metadata.json").read_text())
    edit(raw)  # type: ignore[operator]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda r: r["tables"][0]["columns"][1].pop("dataType"), "tables[0].columns[1].dataType"),
        (lambda r: r["tables"][0]["columns"][0].update(ordinal="x"), "columns[0].ordinal"),
        (lambda r: r["source"].update(kind="oracle"), "source.kind"),
        (lambda r: r["tables"][0].update(primaryKey={"columns": []}), "primaryKey.columns"),
        (lambda r: r["tables"][0].update(bogus=1), "tables[0].bogus"),
        (lambda r: r["tables"][0]["primaryKey"].update(columns=["Nope"]), "unknown columns"),
        (lambda r: r["tables"][0]["columns"][2].update(ordinal=7), "ordinals"),
        (lambda r: r["tables"].append(r["tables"][0]), "appears twice"),
    ],
)
def test_malformed_document_is_a_permanent_error_naming_the_field(
    tmp_path: Path, edit: object, field: str
) -> None:
    with pytest.raises(PermanentError) as err:
        load_metadata(_broken(tmp_path, edit))
    assert field in str(err.value)
    assert err.value.code == "MetadataMalformed"


def test_other_version_missing_file_and_non_json_are_refused(tmp_path: Path) -> None:
    path = _broken(tmp_path, lambda r: r.update(version="datamigrate.ai/metadata/v0"))
    with pytest.raises(PermanentError, match="metadata/v0"):
        load_metadata(path)
    with pytest.raises(PermanentError, match="not found"):
        load_metadata(tmp_path / "absent.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(PermanentError, match="not JSON"):
        load_metadata(tmp_path / "x.json")


def test_foreign_key_arity_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        ForeignKey(columns=["a", "b"], ref_schema="dbo", ref_table="t", ref_columns=["a"])


def test_sample_file_names_encode_unsafe_characters() -> None:
    assert sample_file_name("dbo", "a/b:c") == "sampledata/dbo.a%2Fb%3Ac.jsonl"
    assert sample_file_name("dbo", "Order Details") == "sampledata/dbo.Order Details.jsonl"


def test_truncated_sample_line_is_a_permanent_error(tmp_path: Path) -> None:
    doc = _doc(tmp_path)
    table = doc.tables[0]
    assert table.sample_data is not None
    (tmp_path / table.sample_data.path).write_text("[1,2]\n")
    with pytest.raises(PermanentError, match="expected an array of 3 values"):
        list(iter_sample_rows(tmp_path, table))
