"""The metadata document: what the extract step writes and every later step reads.

One JSON document, ``<workspace>/metadata.json``, describes the source database whether it came
from a live SQL Server catalogue or from a T-SQL script. Its ``version`` is
``datamigrate.ai/metadata/v1``; a reader refuses any other version. Keys are camelCase.

Layout (every list is present, possibly empty; optional values are ``null``)::

    {
      "version": "datamigrate.ai/metadata/v1",
      "source": {"kind": "script|sqlserver", "name": "instnwnd.sql", "database": "Northwind",
                 "extractedAt": "2026-12-03T11:00:00Z", "serverVersion": null, "sha256": "..."},
      "schemas": ["dbo"],
      "tables": [Table...], "views": [View...], "procedures": [Routine...],
      "functions": [Routine...], "triggers": [Trigger...], "userTypes": [UserType...],
      "problems": [Problem...]
    }

Conventions a consumer can rely on (both extractors normalise to them):

* Names are as in the source, case and spaces kept (``Order Details``); an object is identified
  by ``schema`` + ``name``, and ``"schema.name"`` strings (``qualified_name``) are used in
  ``dependencies``. Objects without an explicit schema in a script belong to ``dbo``.
* ``Column.dataType`` is the SQL Server *system* type name in lower case (``nvarchar``,
  ``money``, ``datetime``, ``uniqueidentifier``, ...). A column declared with a user type
  (``sp_addtype``/``CREATE TYPE``) has the base type there and the alias in ``userType``.
* ``maxLength`` is in characters for ``char/varchar/nchar/nvarchar`` (a live ``nvarchar``'s
  byte length is halved), in bytes for ``binary/varbinary``, ``-1`` for ``(max)``, and ``null``
  for every other type (``text``, ``ntext`` and ``image`` included).
* ``precision``/``scale`` are set for ``decimal/numeric`` (defaults 18, 0 applied), ``precision``
  for ``float`` (mantissa bits: 53 by default, 24 for ``real``), ``scale`` for
  ``datetime2/time/datetimeoffset`` (fractional digits, default 7); ``null`` otherwise. Money,
  int, datetime and the like have fixed, well-known shapes implied by the type name.
* ``default``, ``computed`` and check ``expression`` are T-SQL text, wrapped in one or more
  pairs of parentheses (SQL Server stores ``DEFAULT 0`` as ``((0))``, a script reader keeps the
  script's own text, wrapped once); ``strip_parens`` removes the outer pairs.
* A computed column's ``dataType`` is the type SQL Server infers for it on a live source; a
  script does not state it, so there it is ``sql_variant`` with ``computed`` set.
* ``rowCount`` is the catalogue's row count for a live source, and the number of sample rows
  for a script (the script *is* the data).
* Every list of key columns is in key order (composite keys included).

Sample data: rows are NOT inline. A table with sample rows has ``sampleData`` = ``{"path":
"sampledata/dbo.Orders.jsonl", "rowCount": 830, "columns": [...], "complete": true}``; the path
is relative to the folder holding ``metadata.json`` (use it as given: unusual characters in
names are percent-encoded in the file name). The file has one JSON array per line, one value
per column, in the order of ``columns``, which is always the table's full column order. Values:

* ``null`` for NULL (and for a computed column, or a column an INSERT left out that has no
  constant default); a left-out identity column gets the value SQL Server would assign, a
  left-out ``DEFAULT (getdate())``-like column the extraction time (``source.extractedAt``),
  ``NEWID()`` a UUID derived from the table and row number (stable across runs);
* numbers as JSON numbers written with the source literal's exact digits (read them with
  ``parse_float=decimal.Decimal``, as ``iter_sample_rows`` does, to keep money exact);
* ``bit`` as ``true``/``false``;
* strings as JSON strings (``char(n)`` not padded: SQL Server pads on storage, consumers compare
  with trailing spaces ignored anyway);
* ``binary/varbinary/image/timestamp/rowversion`` as lower-case hex without ``0x``;
* ``date`` as ``YYYY-MM-DD``, ``time`` as ``HH:MM:SS[.ffffff]``, ``datetime``-like types as
  ISO 8601 ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` (``datetimeoffset`` with its offset);
* ``uniqueidentifier`` as its canonical string.

Every table of a script has ``sampleData`` (with 0 rows when the script inserts none); a live
table has it when sample rows were read (``--sample-rows``, the first rows by primary key).
``complete`` is true when the rows are all of the table's data (a script, or a live table no
bigger than the sample) and false when they are a sample. Why separate files: the document
stays small enough to live in graph state and checkpoints, and a loader can stream rows into
DuckDB or PostgreSQL table by table.

``problems`` lists what could not be read, never dropped silently: a script batch that failed
(``batch`` index from 0, ``line`` 1-based where the statement starts, an ``excerpt``, the
``error`` and, when legible, the ``object``), or a catalogue object or sample that could not be
read (``batch``/``line`` null).

Use ``load_metadata(path)`` (validates; raises ``PermanentError`` naming the offending field)
and ``dump_metadata(doc, path)``; ``write_sample_rows`` and ``iter_sample_rows`` handle the
sample files.
"""

from __future__ import annotations

import decimal
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from datamigrate_agent.errors import PermanentError

__all__ = [
    "METADATA_VERSION",
    "CheckConstraint",
    "Column",
    "ForeignKey",
    "Identity",
    "Index",
    "KeyConstraint",
    "MetadataDocument",
    "Parameter",
    "Problem",
    "Routine",
    "SampleDataRef",
    "Source",
    "Table",
    "Trigger",
    "UserType",
    "View",
    "dump_metadata",
    "encode_sample_row",
    "iter_sample_rows",
    "load_metadata",
    "qualified_name",
    "sample_file_name",
    "strip_parens",
    "utc_now",
    "write_sample_rows",
]

#: The only document version this code reads and writes.
METADATA_VERSION: Final = "datamigrate.ai/metadata/v1"

#: Types whose ``maxLength`` counts characters (``-1`` means ``(max)``).
CHARACTER_TYPES = frozenset({"char", "varchar", "nchar", "nvarchar"})
#: Types whose ``maxLength`` counts bytes.
BINARY_TYPES = frozenset({"binary", "varbinary"})
#: Types whose sample values are hex strings.
HEX_VALUE_TYPES = frozenset({"binary", "varbinary", "image", "timestamp", "rowversion"})


def qualified_name(schema: str, name: str) -> str:
    """Return ``schema.name``, the form used in ``dependencies`` and include/exclude globs."""
    return f"{schema}.{name}"


class _Model(BaseModel):
    """Base: camelCase JSON keys, snake_case attributes, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", validate_assignment=False
    )


class Source(_Model):
    """Where the metadata came from."""

    kind: Literal["script", "sqlserver"]
    #: Script file name, or server host[:port].
    name: str
    #: Database name (from ``CREATE DATABASE``/``USE`` in a script, when present).
    database: str | None = None
    #: UTC time of extraction, ISO 8601 with ``Z``.
    extracted_at: str
    #: ``@@VERSION`` of a live server.
    server_version: str | None = None
    #: sha256 of a script's bytes as read (after gunzip).
    sha256: str | None = None


class Identity(_Model):
    """An IDENTITY(seed, increment) property."""

    seed: int = 1
    increment: int = 1


class Column(_Model):
    """A table or view column."""

    name: str
    #: 1-based position in the table.
    ordinal: int = Field(ge=1)
    #: SQL Server system type name, lower case (see the module docstring).
    data_type: str
    #: Characters for character types, bytes for binary types, -1 for (max), else null.
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True
    #: Default as T-SQL text, e.g. ``(getdate())`` or ``('UNKNOWN')``.
    default: str | None = None
    #: Name of the default constraint, when named.
    default_name: str | None = None
    identity: Identity | None = None
    #: Computed column expression (T-SQL), or null.
    computed: str | None = None
    computed_persisted: bool = False
    collation: str | None = None
    rowguidcol: bool = False
    #: The user (alias) type the column was declared with, when not a system type.
    user_type: str | None = None
    description: str | None = None


class KeyConstraint(_Model):
    """A primary key or unique constraint; ``columns`` in key order."""

    name: str | None = None
    columns: list[str] = Field(min_length=1)
    clustered: bool | None = None


class ForeignKey(_Model):
    """A foreign key; ``columns[i]`` references ``ref_columns[i]``."""

    name: str | None = None
    columns: list[str] = Field(min_length=1)
    ref_schema: str
    ref_table: str
    ref_columns: list[str] = Field(min_length=1)
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"

    @model_validator(mode="after")
    def _same_arity(self) -> ForeignKey:
        if len(self.columns) != len(self.ref_columns):
            raise ValueError("columns and refColumns differ in length")
        return self


class CheckConstraint(_Model):
    """A CHECK constraint; ``column`` is set for a column-level one."""

    name: str | None = None
    expression: str
    column: str | None = None


class Index(_Model):
    """An index that is not a key constraint (``CREATE INDEX``)."""

    name: str
    columns: list[str] = Field(min_length=1)
    unique: bool = False
    clustered: bool = False


class SampleDataRef(_Model):
    """Where a table's sample rows are; see the module docstring for the value encoding."""

    #: Relative to the folder that holds metadata.json.
    path: str
    row_count: int = Field(ge=0)
    #: Column names in row order: always the table's full column order.
    columns: list[str]
    #: True when the rows are the table's whole content (a script), false for a sample.
    complete: bool = True


class Table(_Model):
    """A base table."""

    schema_: str = Field(alias="schema")
    name: str
    columns: list[Column] = Field(min_length=1)
    primary_key: KeyConstraint | None = None
    unique_keys: list[KeyConstraint] = []
    foreign_keys: list[ForeignKey] = []
    check_constraints: list[CheckConstraint] = []
    indexes: list[Index] = []
    row_count: int | None = None
    description: str | None = None
    sample_data: SampleDataRef | None = None

    @property
    def qualified_name(self) -> str:
        """``schema.name``."""
        return qualified_name(self.schema_, self.name)

    def column(self, name: str) -> Column | None:
        """The column called ``name`` (case-insensitive, as SQL Server compares), or None."""
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)

    @model_validator(mode="after")
    def _consistent(self) -> Table:
        names = [c.name.lower() for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names in {self.qualified_name}")
        if [c.ordinal for c in self.columns] != list(range(1, len(self.columns) + 1)):
            raise ValueError(f"column ordinals of {self.qualified_name} are not 1..n in order")
        keys: list[KeyConstraint | ForeignKey] = [self.primary_key] if self.primary_key else []
        for key in [*keys, *self.unique_keys, *self.foreign_keys]:
            missing = [c for c in key.columns if c.lower() not in names]
            if missing:
                raise ValueError(f"key {key.name} names unknown columns {missing}")
        if self.sample_data and self.sample_data.columns != [c.name for c in self.columns]:
            raise ValueError("sampleData.columns differs from the table's columns")
        return self


class View(_Model):
    """A view; ``definition`` is the whole ``CREATE VIEW`` text."""

    schema_: str = Field(alias="schema")
    name: str
    definition: str
    #: Output columns: from the catalogue for a live source; for a script only when every
    #: column is a plain column (or ``*``) of a known table or view, else null (not guessed).
    columns: list[Column] | None = None
    #: Objects the view reads, as ``schema.name``.
    dependencies: list[str] = []
    description: str | None = None

    @property
    def qualified_name(self) -> str:
        """``schema.name``."""
        return qualified_name(self.schema_, self.name)


class Parameter(_Model):
    """A routine parameter (name with its ``@``)."""

    name: str
    ordinal: int = Field(ge=1)
    data_type: str
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    output: bool = False
    #: Default value as T-SQL text.
    default: str | None = None


class Routine(_Model):
    """A stored procedure or a function; ``definition`` is the whole CREATE text."""

    schema_: str = Field(alias="schema")
    name: str
    #: ``procedure`` for procedures; ``scalar``, ``table`` (multi-statement) or ``inline``
    #: (a single RETURN SELECT) for functions.
    kind: Literal["procedure", "scalar", "table", "inline"]
    definition: str
    #: Null when the parameter list could not be parsed.
    parameters: list[Parameter] | None = None
    #: Scalar function return type, e.g. ``int`` or ``nvarchar(40)``.
    returns: str | None = None
    dependencies: list[str] = []
    description: str | None = None

    @property
    def qualified_name(self) -> str:
        """``schema.name``."""
        return qualified_name(self.schema_, self.name)


class Trigger(_Model):
    """A DML trigger; kept so later steps can flag the behaviour it adds."""

    schema_: str = Field(alias="schema")
    name: str
    table: str
    #: Subset of INSERT, UPDATE, DELETE.
    events: list[str] = []
    definition: str


class UserType(_Model):
    """An alias type (``sp_addtype`` or ``CREATE TYPE ... FROM``)."""

    schema_: str = Field(default="dbo", alias="schema")
    name: str
    #: Base system type name, lower case.
    base_type: str
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True


class Problem(_Model):
    """Something the extractor could not read."""

    #: 0-based GO batch index in a script, or null for a live source.
    batch: int | None = None
    #: 1-based line where the batch starts.
    line: int | None = None
    #: The first characters of the batch (or the object's name).
    excerpt: str
    error: str
    #: ``schema.name`` of the object concerned, when known.
    object: str | None = None


class MetadataDocument(_Model):
    """The whole document; see the module docstring."""

    version: Literal["datamigrate.ai/metadata/v1"] = METADATA_VERSION
    source: Source
    schemas: list[str] = []
    tables: list[Table] = []
    views: list[View] = []
    procedures: list[Routine] = []
    functions: list[Routine] = []
    triggers: list[Trigger] = []
    user_types: list[UserType] = []
    problems: list[Problem] = []

    def table(self, schema: str, name: str) -> Table | None:
        """The table ``schema.name`` (case-insensitive), or None."""
        key = qualified_name(schema, name).lower()
        return next((t for t in self.tables if t.qualified_name.lower() == key), None)

    @model_validator(mode="after")
    def _unique_objects(self) -> MetadataDocument:
        seen: set[str] = set()
        objects: list[Table | View | Routine] = [*self.tables, *self.views]
        for obj in [*objects, *self.procedures, *self.functions]:
            key = obj.qualified_name.lower()
            if key in seen:
                raise ValueError(f"object {obj.qualified_name} appears twice")
            seen.add(key)
        return self


def strip_parens(text: str) -> str:
    """``((0))`` -> ``0``: remove outer parentheses that enclose the whole expression."""
    out = text.strip()
    while out.startswith("(") and out.endswith(")") and _encloses(out):
        out = out[1:-1].strip()
    return out


def _encloses(text: str) -> bool:
    """True when the first ``(`` of ``text`` closes at its last character (strings aware)."""
    depth = 0
    quote = False
    for i, ch in enumerate(text):
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False


def utc_now() -> str:
    """Current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _validation_message(path: Path, err: ValidationError) -> str:
    issues = [f"{_field_path(e['loc'])}: {e['msg']}" for e in err.errors()[:5]]
    more = f" (and {err.error_count() - 5} more)" if err.error_count() > 5 else ""
    return f"malformed metadata {path}: " + "; ".join(issues) + more


def load_metadata(path: str | os.PathLike[str]) -> MetadataDocument:
    """Read and validate a metadata document.

    Raises:
        PermanentError: the file is missing, is not JSON, has another version, or a field is
            missing or malformed; the message names the field (``tables[2].columns[0].name``).
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise PermanentError(f"metadata {p} not found", code="MetadataMissing") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PermanentError(f"metadata {p} is not JSON: {e}", code="MetadataMalformed") from e
    if not isinstance(raw, dict):
        raise PermanentError(f"metadata {p} is not a JSON object", code="MetadataMalformed")
    if raw.get("version") != METADATA_VERSION:
        raise PermanentError(
            f"metadata {p}: version {raw.get('version')!r} is not {METADATA_VERSION}",
            code="MetadataVersion",
        )
    try:
        return MetadataDocument.model_validate(raw)
    except ValidationError as e:
        raise PermanentError(_validation_message(p, e), code="MetadataMalformed") from e


def dump_metadata(doc: MetadataDocument, path: str | os.PathLike[str]) -> None:
    """Write ``doc`` to ``path`` as indented JSON, atomically (temp file + rename)."""
    p = Path(path)
    text = doc.model_dump_json(by_alias=True, indent=2) + "\n"
    _write_atomically(p, text)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._ $#@-]")


def sample_file_name(schema: str, name: str) -> str:
    """``sampledata/<schema>.<table>.jsonl``, with unsafe characters percent-encoded."""

    def enc(s: str) -> str:
        return _UNSAFE_FILE_CHARS.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), s)

    return f"sampledata/{enc(schema)}.{enc(name)}.jsonl"


def _encode_value(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, decimal.Decimal):
        if not v.is_finite():
            raise ValueError(f"{v} has no JSON form")
        return str(v)
    if isinstance(v, float):
        return json.dumps(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return '"' + bytes(v).hex() + '"'
    if isinstance(v, datetime):
        return '"' + v.isoformat() + '"'
    return json.dumps(v if isinstance(v, str) else str(v), ensure_ascii=False)


def encode_sample_row(row: list[Any]) -> str:
    """One JSONL line (without newline); ``Decimal`` values keep their exact digits."""
    return "[" + ",".join(_encode_value(v) for v in row) + "]"


def write_sample_rows(
    base_dir: str | os.PathLike[str],
    table: Table,
    rows: Iterable[list[Any]],
    *,
    complete: bool = True,
) -> SampleDataRef:
    """Write ``rows`` (lists in table column order) and return the reference to store.

    ``base_dir`` is the folder that will hold metadata.json.
    """
    rel = sample_file_name(table.schema_, table.name)
    path = Path(base_dir) / rel
    width = len(table.columns)
    count = 0
    lines = []
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row of {len(row)} values for {width} columns")
        lines.append(encode_sample_row(row))
        count += 1
    _write_atomically(path, "\n".join(lines) + ("\n" if lines else ""))
    return SampleDataRef(
        path=rel, row_count=count, columns=[c.name for c in table.columns], complete=complete
    )


def iter_sample_rows(base_dir: str | os.PathLike[str], table: Table) -> Iterator[list[Any]]:
    """Yield a table's sample rows (decimals as ``decimal.Decimal``); nothing if it has none.

    Raises:
        PermanentError: the file is missing or a line is not a JSON array of the right width.
    """
    ref = table.sample_data
    if ref is None:
        return
    path = Path(base_dir) / ref.path
    try:
        f = path.open(encoding="utf-8")
    except OSError as e:
        raise PermanentError(f"sample data {path} unreadable: {e}", code="MetadataMalformed")
    with f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line, parse_float=decimal.Decimal)
            except json.JSONDecodeError as e:
                raise PermanentError(f"{path}:{n}: {e}", code="MetadataMalformed") from e
            if not isinstance(row, list) or len(row) != len(ref.columns):
                raise PermanentError(
                    f"{path}:{n}: expected an array of {len(ref.columns)} values",
                    code="MetadataMalformed",
                )
            yield row
