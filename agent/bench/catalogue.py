"""A generated SQL Server catalogue for the benchmark: many tables, keys, rows and views."""

from __future__ import annotations

import decimal
import random
from pathlib import Path

from datamigrate_agent.metadata import (
    Column,
    ForeignKey,
    KeyConstraint,
    MetadataDocument,
    Source,
    Table,
    View,
    dump_metadata,
    write_sample_rows,
)

ROWS_PER_TABLE = 20


def _table(i: int) -> Table:
    fks = [ForeignKey(columns=["ParentID"], ref_schema="dbo", ref_table=f"Table {i - 1:04d}",
                      ref_columns=["ID"])] if i % 5 and i > 0 else []  # fmt: skip
    return Table(
        schema="dbo", name=f"Table {i:04d}",
        columns=[
            Column(name="ID", ordinal=1, data_type="int", nullable=False),
            Column(name="ParentID", ordinal=2, data_type="int"),
            Column(name="Name", ordinal=3, data_type="nvarchar", max_length=40, nullable=False),
            Column(name="Amount", ordinal=4, data_type="money"),
            Column(name="Created", ordinal=5, data_type="datetime"),
            Column(name="Order", ordinal=6, data_type="smallint"),
        ],
        primary_key=KeyConstraint(columns=["ID"]), foreign_keys=fks,
    )  # fmt: skip


def _rows(rng: random.Random) -> list[list[object]]:
    return [[n, n if n > 1 else None, f"name {n}",
             decimal.Decimal(rng.randint(0, 10**6)) / 100, f"2024-01-{1 + n % 28:02d}T10:00:00",
             rng.randint(0, 100)] for n in range(1, ROWS_PER_TABLE + 1)]  # fmt: skip


def _view(j: int, tables: int) -> View:
    a, b = f"Table {j % tables:04d}", f"Table {(j * 7 + 3) % tables:04d}"
    body = (f'SELECT x.ID, x.Name, SUM(y.Amount) AS Total, COUNT(*) AS N\n'
            f'FROM [{a}] x JOIN [{b}] y ON y.ID = x.ID\nWHERE x.Amount > 10\n'
            f'GROUP BY x.ID, x.Name')  # fmt: skip
    return View(schema="dbo", name=f"View {j:04d}",
                definition=f"CREATE VIEW [View {j:04d}] AS\n{body}",
                dependencies=[f"dbo.{a}", f"dbo.{b}"])  # fmt: skip


def write_catalogue(ws: Path, *, tables: int, views: int) -> Path:
    """Write metadata.json and sample rows for the generated catalogue into ``ws``."""
    rng = random.Random(7)
    doc_tables = []
    for i in range(tables):
        t = _table(i)
        t.sample_data = write_sample_rows(ws, t, _rows(rng))
        t.row_count = ROWS_PER_TABLE
        doc_tables.append(t)
    doc = MetadataDocument(
        source=Source(kind="script", name="catalogue.sql", database="Catalogue",
                      extracted_at="2026-12-03T00:00:00Z"),
        schemas=["dbo"], tables=doc_tables, views=[_view(j, tables) for j in range(views)],
    )  # fmt: skip
    dump_metadata(doc, ws / "metadata.json")
    return ws / "metadata.json"
