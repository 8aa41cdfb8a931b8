"""SQL Server type names as scripts spell them, normalised to the metadata conventions."""

from __future__ import annotations

from dataclasses import dataclass

from datamigrate_agent.extract._cursor import Cursor, StatementError
from datamigrate_agent.metadata import BINARY_TYPES, CHARACTER_TYPES, UserType

__all__ = [
    "SYSTEM_TYPES",
    "TypeShape",
    "TypeSpec",
    "parse_type",
    "resolve_type",
    "split_name",
    "type_shape",
]

#: Multi-word and alternative spellings -> sys.types name.
_SYNONYMS = {
    "INTEGER": "int",
    "DEC": "decimal",
    "CHARACTER": "char",
    "CHAR VARYING": "varchar",
    "CHARACTER VARYING": "varchar",
    "NATIONAL CHAR": "nchar",
    "NATIONAL CHARACTER": "nchar",
    "NATIONAL CHAR VARYING": "nvarchar",
    "NATIONAL CHARACTER VARYING": "nvarchar",
    "NATIONAL TEXT": "ntext",
    "DOUBLE PRECISION": "float",
    "ROWVERSION": "timestamp",
}

SYSTEM_TYPES = frozenset(
    {
        "bigint", "binary", "bit", "char", "date", "datetime", "datetime2", "datetimeoffset",
        "decimal", "float", "geography", "geometry", "hierarchyid", "image", "int", "money",
        "nchar", "ntext", "numeric", "nvarchar", "real", "smalldatetime", "smallint",
        "smallmoney", "sql_variant", "sysname", "text", "time", "timestamp", "tinyint",
        "uniqueidentifier", "varbinary", "varchar", "xml",
    }
)  # fmt: skip

_FRACTIONAL_TYPES = frozenset({"datetime2", "time", "datetimeoffset"})


@dataclass(slots=True)
class TypeShape:
    """A resolved column type in the metadata's conventions."""

    data_type: str
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    user_type: str | None = None
    #: Nullability that comes with a user type (None: the type says nothing).
    type_nullable: bool | None = None


def type_shape(name: str, args: list[str]) -> TypeShape:
    """Normalise a system type and its ``(args)`` (as written) to the metadata conventions."""
    data_type = name.lower()
    if data_type == "xml":
        return TypeShape("xml")  # xml(CONTENT schema_collection): the collection is not a shape
    nums = [int(a) for a in args if a.upper() != "MAX"]
    is_max = any(a.upper() == "MAX" for a in args)
    if data_type == "sysname":
        return TypeShape("nvarchar", 128)
    if data_type in CHARACTER_TYPES or data_type in BINARY_TYPES:
        return TypeShape(data_type, -1 if is_max else (nums[0] if nums else 1))
    if data_type in ("decimal", "numeric"):
        precision = nums[0] if nums else 18
        return TypeShape(data_type, precision=precision, scale=nums[1] if len(nums) > 1 else 0)
    if data_type == "float":
        bits = nums[0] if nums else 53
        return TypeShape("real", precision=24) if bits <= 24 else TypeShape("float", precision=53)
    if data_type == "real":
        return TypeShape("real", precision=24)
    if data_type in _FRACTIONAL_TYPES:
        return TypeShape(data_type, scale=nums[0] if nums else 7)
    return TypeShape(data_type)


@dataclass(slots=True)
class TypeSpec:
    """A type as written: its name parts and arguments."""

    parts: list[str]
    args: list[str]


def parse_type(cur: Cursor) -> TypeSpec:
    """Read a type name (possibly multi-word or schema-qualified) and its arguments."""
    first = cur.peek()
    if first is None or first.kind not in ("word", "qid"):
        raise cur.error("expected a type")
    words = [cur.next().value]
    if first.kind == "word":
        # Multi-word spellings: read while the longer spelling is still a known prefix.
        while (tok := cur.peek()) is not None and tok.kind == "word":
            longer = " ".join([*words, tok.value]).upper()
            if not any(s == longer or s.startswith(longer + " ") for s in _SYNONYMS):
                break
            words.append(cur.next().value)
    parts = [" ".join(words)]
    while cur.accept_op("."):
        parts.append(cur.ident())
    args: list[str] = []
    if (tok := cur.peek()) is not None and tok.is_op("("):
        start, end = cur.group()
        for a, b in cur.split_commas(start, end):
            args.append(cur.source(a, b).strip())
    return TypeSpec(parts, args)


def resolve_type(spec: TypeSpec, user_types: dict[str, UserType]) -> TypeShape:
    """System type (spelled any way) or a user type from ``sp_addtype``/``CREATE TYPE``."""
    name = spec.parts[-1]
    key = _SYNONYMS.get(name.upper(), name.lower())
    if key in SYSTEM_TYPES and (len(spec.parts) == 1 or _is_sys(spec)):
        try:
            return type_shape(key, spec.args)
        except ValueError as e:
            raise StatementError(f"bad arguments {spec.args} for type {name}") from e
    user = user_types.get(name.lower())
    if user is None:
        raise StatementError(f"unknown type {'.'.join(spec.parts)}")
    return TypeShape(
        user.base_type,
        user.max_length,
        user.precision,
        user.scale,
        user_type=user.name,
        type_nullable=user.nullable,
    )


def _is_sys(spec: TypeSpec) -> bool:
    return len(spec.parts) == 2 and spec.parts[0].lower() == "sys"


def split_name(parts: list[str], default_schema: str = "dbo") -> tuple[str, str]:
    """``(schema, name)`` of a multi-part name; the schema defaults to ``default_schema``."""
    if len(parts) == 1 or not parts[-2]:
        return default_schema, parts[-1]
    return parts[-2], parts[-1]
