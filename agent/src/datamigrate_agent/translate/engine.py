"""The translation pipeline: split, parse (T-SQL), rewrite the tree, generate (target).

Each semantic kind has its own rewrite in ``transforms/``; ``transforms.TRANSFORMS`` lists
them in the order they run. Statements that carry no SQL for the target (``GO``, ``SET``
options, ``USE``) are kept in the script result with ``skipped`` set; procedural T-SQL
(control flow, TRY ... CATCH, PRINT, RAISERROR, WAITFOR, SAVE TRANSACTION) and UPDATE/DELETE
TOP (n) fail with the reason before parsing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from datamigrate_agent.translate import _control_flow, _ddl_text
from datamigrate_agent.translate._context import Context, Options, ResolveTable, SkipStatement
from datamigrate_agent.translate._schema import Schema
from datamigrate_agent.translate.errors import TranslationError
from datamigrate_agent.translate.splitter import split_batches, split_script, split_statements
from datamigrate_agent.translate.targets import get_target
from datamigrate_agent.translate.transforms import dml, session, transforms_for

__all__ = [
    "Options",
    "TranslatedStatement",
    "translate_query",
    "translate_script",
    "translate_statement",
]

SchemaInput = Mapping[str, Mapping[str, str]]

# sqlglot logs a warning for every statement it reads as a bare Command (procedures, SET
# IDENTITY_INSERT); the translator reports what it could not translate itself.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranslatedStatement:
    """One source statement and what it became.

    Attributes:
        source: the T-SQL text of the statement.
        line: its first line in the script (1-based).
        statements: the target statements, in order, without semicolons (usually one;
            IDENTITY DDL adds a sequence, an IDENTITY_INSERT block moves it on). Empty when
            skipped or failed.
        kind: ``query``, ``insert``, ``update``, ``delete``, ``create_table``, ``create_view``,
            ``ddl``, ``set`` or ``other``.
        skipped: why the statement has no target SQL (``SET`` options, ``USE``).
        error: the untranslatable reason, when translation failed.
    """

    source: str
    line: int
    statements: tuple[str, ...] = ()
    kind: str = "other"
    skipped: str | None = None
    error: str | None = None

    @property
    def sql(self) -> str:
        """The target SQL as one text, statements separated by ``;`` and a newline."""
        return ";\n".join(self.statements)


@dataclass
class _Session:
    """State that runs through a script: schema, settings, ROWCOUNT."""

    schema: Schema
    options: Options
    rowcount: int = 0
    #: statements for the end of the script (foreign keys once the data is in).
    deferred: list[exp.Expression] = field(default_factory=list)


def translate_statement(
    sql: str,
    target: str,
    *,
    schema: SchemaInput | None = None,
    options: Options | None = None,
) -> str:
    """Translate one T-SQL statement into ``target`` SQL (no trailing semicolon).

    Args:
        sql: a single T-SQL statement (a trailing ``;`` or ``GO`` is fine).
        target: a sqlglot dialect name (duckdb, postgres, snowflake, bigquery, databricks,
            redshift).
        schema: ``{"dbo.table": {"column": "sql server type"}}`` for the tables it reads.
        options: source settings (DATEFIRST, collation); defaults are SQL Server's.

    Returns:
        The target SQL; several statements (for example a sequence before a table with an
        IDENTITY column) are joined by ``;`` and a newline.

    Raises:
        TranslationError: the statement does not parse, or cannot keep its meaning.
    """
    state = _Session(Schema.from_mapping(schema), options or Options())
    pieces = [p for _, batch in split_batches(sql) for p in split_statements(batch)]
    if len(pieces) != 1:
        raise TranslationError(f"expected one statement, found {len(pieces)}")
    result = _translate_one(pieces[0], 1, target, state, script=False)
    if result.error:
        raise TranslationError(result.error)
    if result.skipped and not result.statements:
        raise TranslationError(f"statement has no {target} equivalent: {result.skipped}")
    return result.sql


def translate_script(
    text: str,
    target: str,
    *,
    schema: SchemaInput | None = None,
    options: Options | None = None,
) -> list[TranslatedStatement]:
    """Translate a whole T-SQL script, statement by statement, in order.

    ``GO`` separates batches and semicolons are optional. Tables the script creates (and
    ``sp_addtype`` alias types, ``SET DATEFIRST``, ``SET ROWCOUNT``) are remembered for the
    statements that follow. A statement that cannot be translated gets ``error`` set and the
    others go on; nothing raises except an unknown ``target``.

    Args:
        text: the script.
        target: a sqlglot dialect name.
        schema: column types of tables the script reads but does not create.
        options: source settings; ``SET DATEFIRST`` in the script overrides ``datefirst``.
    """
    get_target(target)
    state = _Session(Schema.from_mapping(schema), options or Options())
    try:
        raw = split_script(text)
    except TranslationError as e:
        return [TranslatedStatement(text, 1, error=e.reason)]
    results = [_translate_one(r.text, r.line, target, state) for r in raw]
    if state.deferred:
        results.append(_deferred(state, target, raw[-1].line if raw else 1))
    return results


def _deferred(state: _Session, target: str, line: int) -> TranslatedStatement:
    ctx = Context(get_target(target), state.options, state.schema)
    statements = [s for tree in state.deferred for s in _generate(_rewrite(tree, ctx), ctx)]
    source = "-- foreign keys of the script's tables, added once its data is loaded"
    return TranslatedStatement(source, line, tuple(statements), "ddl")


def translate_query(
    select_sql: str,
    target: str,
    resolve_table: ResolveTable,
    *,
    schema: SchemaInput | None = None,
    options: Options | None = None,
) -> str:
    """Translate a view or procedure body (one query) for a dbt model.

    Every table reference is passed to ``resolve_table(schema, name)`` (schema '' when not
    written, names as written in the source); a non-None answer, such as
    ``"{{ ref('stg_northwind__orders') }}"``, replaces the reference verbatim and keeps its
    alias (a bare reference gets its table name as alias, so ``orders.id`` still resolves).
    References to CTEs are left alone. ``CREATE VIEW v [(columns)] [WITH ...] AS`` in front is
    accepted and dropped; a column list renames the outputs.

    Raises:
        TranslationError: not a single query, or a construct that cannot keep its meaning.
    """
    body, columns = _strip_view_header(select_sql)
    state = _Session(Schema.from_mapping(schema), options or Options())
    tree = _parse(body)
    if not isinstance(tree, exp.Query):
        raise TranslationError(f"expected a query, found {tree.key.upper()}")
    _rename_outputs(tree, columns)
    ctx = Context(get_target(target), state.options, state.schema, resolve_table)
    return _generate(_rewrite(tree, ctx), ctx)[-1]


_NAME = r"(?:\[[^\]]+\]|\"[^\"]+\"|[\w@#$]+)"
_VIEW_HEADER = re.compile(
    rf"^\s*(?:CREATE|ALTER|CREATE\s+OR\s+ALTER)\s+VIEW\s+{_NAME}(?:\s*\.\s*{_NAME})*"
    r"\s*(?:\((?P<columns>[^)]*)\))?\s*(?:WITH\s+[\w\s,]+?)?\s*\bAS\b",
    re.IGNORECASE | re.DOTALL,
)


def _strip_view_header(sql: str) -> tuple[str, list[str]]:
    """The view's query and its declared column names (``CREATE VIEW v (a, b) AS``)."""
    stripped = re.sub(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*", "", sql, flags=re.DOTALL)
    match = _VIEW_HEADER.match(stripped)
    if match is None:
        return sql.strip().rstrip(";"), []
    names = [n.strip().strip('[]"') for n in (match.group("columns") or "").split(",")]
    return stripped[match.end() :].strip().rstrip(";"), [n for n in names if n]


def _rename_outputs(tree: exp.Query, names: list[str]) -> None:
    """Declared view columns name the query's outputs, in order (the first SELECT's)."""
    if not names:
        return
    target: exp.Expression = tree
    while isinstance(target, (exp.Union, exp.Except, exp.Intersect, exp.Subquery)):
        target = target.this if isinstance(target, exp.Subquery) else target.left
    items = target.expressions if isinstance(target, exp.Select) else []
    if len(items) != len(names) or any(isinstance(i, exp.Star) for i in items):
        raise TranslationError(f"view declares {len(names)} columns for {len(items)} outputs")
    target.set(
        "expressions",
        [
            exp.alias_(item.this if isinstance(item, exp.Alias) else item, name)
            for item, name in zip(items, names, strict=True)
        ],
    )


def _parse(sql: str) -> exp.Expression:
    try:
        trees = sqlglot.parse(_ddl_text.clean(sql), read="tsql")
    except (ParseError, SqlglotError) as e:
        message = str(e).splitlines()[0]
        raise TranslationError(f"T-SQL does not parse: {message}", code="ParseFailed") from e
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise TranslationError(f"expected one statement, found {len(trees)}")
    return trees[0]


def _kind(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Create):
        kind = (tree.args.get("kind") or "").lower()
        return {"table": "create_table", "view": "create_view"}.get(kind, "ddl")
    if isinstance(tree, exp.Query):
        return "query"
    names = {exp.Insert: "insert", exp.Update: "update", exp.Delete: "delete", exp.Set: "set"}
    for cls, name in names.items():
        if isinstance(tree, cls):
            return name
    return "ddl" if isinstance(tree, (exp.Drop, exp.Alter)) else "other"


def _translate_one(
    text: str, line: int, target: str, state: _Session, script: bool = True
) -> TranslatedStatement:
    skipped = session.skip_reason(text)
    if skipped:
        return TranslatedStatement(text, line, kind="other", skipped=skipped)
    text_to_parse = session.rewrite_if_drop(text)
    procedural = _control_flow.reason(text_to_parse, target) or dml.top_reason(text, target)
    if procedural:
        return TranslatedStatement(text, line, kind="other", error=procedural)
    try:
        tree = _parse(text_to_parse)
        ctx = Context(
            get_target(target), state.options, state.schema, rowcount=state.rowcount, script=script
        )
        handled = session.apply(tree, ctx, state)
        if handled is not None:
            return TranslatedStatement(
                text, line, tuple(handled.statements), "set", skipped=handled.skipped
            )
        statements = _generate(_rewrite(tree, ctx), ctx)
        state.deferred.extend(ctx.deferred)
    except TranslationError as e:
        return TranslatedStatement(text, line, kind="other", error=e.reason)
    except SkipStatement as e:
        return TranslatedStatement(text, line, kind=_kind(tree), skipped=e.reason)
    except Exception as e:  # noqa: BLE001 - one statement's bug must not lose the script
        log.warning("Translation crashed", extra={"fields": {"line": line, "error": repr(e)}})
        return TranslatedStatement(
            text, line, kind="other", error=f"translator failure ({type(e).__name__}: {e})"
        )
    return TranslatedStatement(text, line, tuple(statements), _kind(tree))


def _rewrite(tree: exp.Expression, ctx: Context) -> exp.Expression:
    for transform in transforms_for(tree):
        tree = transform(tree, ctx)
    return tree


def _generate(tree: exp.Expression, ctx: Context) -> list[str]:
    try:
        sql = tree.sql(
            dialect=ctx.dialect,
            unsupported_level=sqlglot.ErrorLevel.RAISE,
            identify=ctx.target.QUOTE_IDENTIFIERS,
        )
    except SqlglotError as e:
        raise TranslationError(f"cannot write {ctx.dialect} SQL: {e}") from e
    for placeholder, text in ctx.placeholders.items():
        sql = re.sub(rf'"?{placeholder}"?', lambda _m, t=text: t, sql)
    return [*ctx.before, sql, *ctx.after]
