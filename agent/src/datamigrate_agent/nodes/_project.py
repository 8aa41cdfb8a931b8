"""Writing the dbt project from metadata, plan and the per-object SQL kept in the state.

The writer is a pure function of its inputs, so the repair step can rewrite the project after
changing one object. Each model group (a layer of one source) gets exactly one yml file, and
every model and source table is declared exactly once.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datamigrate_agent.config import MigrateConfig
from datamigrate_agent.metadata import Column, MetadataDocument, Routine, Table, View
from datamigrate_agent.nodes._names import object_key, quote, snake
from datamigrate_agent.nodes._profiles import profile_for
from datamigrate_agent.nodes._sql import column_type
from datamigrate_agent.state import PlannedModel

__all__ = ["ProjectInputs", "write_project", "ref_placeholders", "restore_refs", "raw_schema"]

UNIQUE_MACRO = "datamigrate_unique_combination"
RELATIONSHIP_MACRO = "datamigrate_relationships_combination"
SEVERITY_VAR = "datamigrate_test_severity"
_SAFE_CAST = {"duckdb": "try_cast", "snowflake": "try_cast", "databricks": "try_cast",
              "bigquery": "safe_cast"}  # fmt: skip
_TEXT_TYPE = {"bigquery": "string", "databricks": "string"}
_REF = re.compile(r"\{\{\s*ref\('([A-Za-z0-9_]+)'\)\s*\}\}")
_PLACEHOLDER = re.compile(r"[\"`]?\b__ref_([A-Za-z0-9_]+)\b[\"`]?")

_MACROS = f"""\
{{# Generic tests written by DataMigrate; dbt packages (dbt_utils) are not needed. #}}

{{% test {UNIQUE_MACRO}(model, columns) %}}
{{# Rows whose combination of columns is not unique (a composite key). #}}
select {{{{ columns | join(', ') }}}}, count(*) as n_rows
from {{{{ model }}}}
where {{% for c in columns -%}}
  {{{{ c }}}} is not null{{{{ ' and ' if not loop.last }}}}
{{%- endfor %}}
group by {{{{ columns | join(', ') }}}}
having count(*) > 1
{{% endtest %}}

{{% macro datamigrate_param(name, type) %}}
{{# A stored procedure's parameter, as a dbt var: NULL of its type until the var is set. #}}
{{%- set value = var(name, none) -%}}
{{%- if value is none -%}}cast(null as {{{{ type }}}})
{{%- else -%}}cast('{{{{ value | string | replace("'", "''") }}}}' as {{{{ type }}}}){{%- endif -%}}
{{% endmacro %}}

{{% test {RELATIONSHIP_MACRO}(model, columns, to, fields) %}}
{{# Rows whose composite foreign key has no parent row. #}}
select {{% for c in columns -%}}
  child.{{{{ c }}}}{{{{ ', ' if not loop.last }}}}
{{%- endfor %}}
from {{{{ model }}}} as child
left join {{{{ to }}}} as parent
  on {{% for c in columns -%}}
  child.{{{{ c }}}} = parent.{{{{ fields[loop.index0] }}}}{{{{ ' and ' if not loop.last }}}}
{{%- endfor %}}
where {{% for c in columns -%}}
  child.{{{{ c }}}} is not null{{{{ ' and ' if not loop.last }}}}
{{%- endfor %}}
  and parent.{{{{ fields[0] }}}} is null
{{% endtest %}}
"""


@dataclass
class ProjectInputs:
    """Everything the project is a function of."""

    doc: MetadataDocument
    config: MigrateConfig
    plan: dict[str, PlannedModel]
    sources: dict[str, str]
    #: Object key -> SQL body (views and procedures).
    sql: dict[str, str]
    #: Staging models (object keys) switched to the cast fallback.
    safe_casts: set[str] = field(default_factory=set)
    #: Object key -> reason, for models written disabled.
    disabled: dict[str, str] = field(default_factory=dict)


def raw_schema(source: str) -> str:
    """Default schema of the raw (loaded) tables of a source."""
    return f"raw_{source}"


_OURS = re.compile(r"\{\{ (?:ref|source|datamigrate_param)\([^{}]*\) \}\}")
_DELIMITERS = ("{{", "}}", "{%", "%}", "{#", "#}")


def jinja_safe(text: str) -> str:
    """``text`` with any Jinja delimiter kept literal, so source text can never run as Jinja."""
    if not any(d in text for d in _DELIMITERS):
        return text
    return (
        "{% raw %}"
        + text.replace("{% endraw %}", "{% endraw %}{{ '{% endraw %}' }}{% raw %}")
        + "{% endraw %}"
    )


def jinja_safe_sql(sql: str) -> str:
    """A model body where only the ``ref()``/``source()``/param calls we wrote are Jinja."""
    parts, last = [], 0
    for m in _OURS.finditer(sql):
        parts += [jinja_safe(sql[last : m.start()]), m.group(0)]
        last = m.end()
    parts.append(jinja_safe(sql[last:]))
    return "".join(parts)


def ref_placeholders(sql: str) -> str:
    """``{{ ref('m') }}`` -> ``__ref_m``, so plain SQL tools can read a model."""
    return _REF.sub(lambda m: f"__ref_{m.group(1)}", sql)


def restore_refs(sql: str) -> str:
    """The inverse of ``ref_placeholders``."""
    return _PLACEHOLDER.sub(lambda m: "{{ ref('" + m.group(1) + "') }}", sql)


def _dump(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8"
    )


def _project_name(cfg: MigrateConfig) -> str:
    return snake(cfg.project_name)


def _project_yml(inp: ProjectInputs) -> dict[str, Any]:
    name = _project_name(inp.config)
    layers = {layer: {"+materialized": inp.config.materialization}
              for layer in ("staging", "intermediate", "marts")}  # fmt: skip
    return {
        "name": name, "version": "1.0.0", "config-version": 2, "profile": name,
        "model-paths": ["models"], "macro-paths": ["macros"], "test-paths": ["tests"],
        "analysis-paths": ["analyses"], "target-path": "target",
        "clean-targets": ["target", "dbt_packages"],
        "models": {name: layers},
        "data_tests": {name: {"+severity": "{{ var('" + SEVERITY_VAR + "', 'error') }}"}},
    }  # fmt: skip


def _column_doc(c: Column) -> str:
    shape = c.data_type
    if c.max_length is not None:
        shape += f"({'max' if c.max_length < 0 else c.max_length})"
    elif c.precision is not None and c.data_type in {"decimal", "numeric"}:
        shape += f"({c.precision},{c.scale or 0})"
    parts = [jinja_safe(c.description)] if c.description else []
    parts.append(f"SQL Server {shape}{'' if c.nullable else ', not null'}")
    if c.identity:
        parts.append(f"identity({c.identity.seed},{c.identity.increment})")
    if c.user_type:
        parts.append(f"declared as {c.user_type}")
    if c.computed:
        parts.append(f"computed in SQL Server as {c.computed} (loaded as NULL)")
    return "; ".join(parts) + "."


def _cast(c: Column, target: str, safe: bool) -> str:
    col = quote(c.name, target)
    kind = column_type(c, target)
    if safe and target in _SAFE_CAST:
        return f"{_SAFE_CAST[target]}({col} as {kind}) as {col}"
    if safe:
        return f"cast({col} as {_TEXT_TYPE.get(target, 'text')}) as {col}"
    return f"cast({col} as {kind}) as {col}"


def staging_sql(t: Table, pm: PlannedModel, target: str, safe: bool) -> str:
    """One staging model: every column, explicitly cast, identifiers quoted."""
    source, table = pm["sources"][0].split(".", 1)
    casts = ",\n".join(f"    {jinja_safe(_cast(c, target, safe))}" for c in t.columns)
    note = " (cast fallback after a failed build)" if safe else ""
    return (
        f"-- Staging model for {t.qualified_name}: every column cast to {target} types{note}.\n"
        f"select\n{casts}\nfrom {{{{ source('{source}', '{table}') }}}}\n"
    )


def _key_tests(t: Table, target: str) -> tuple[dict[str, list[Any]], list[Any]]:
    per_col: dict[str, list[Any]] = {c.name: [] for c in t.columns}
    model_tests: list[Any] = []
    for c in t.columns:
        if not c.nullable:
            per_col[c.name].append("not_null")
    keys = ([t.primary_key] if t.primary_key else []) + list(t.unique_keys)
    for key in keys:
        cols = [t.column(k).name for k in key.columns]  # type: ignore[union-attr]
        if len(cols) == 1:
            if "unique" not in per_col[cols[0]]:
                per_col[cols[0]].append("unique")
        else:
            quoted = [quote(k, target) for k in cols]
            model_tests.append({UNIQUE_MACRO: {"arguments": {"columns": quoted}}})
    return per_col, model_tests


def _fk_tests(inp: ProjectInputs, t: Table, per_col: dict[str, list[Any]]) -> list[Any]:
    target, model_tests = inp.config.target, []
    for fk in t.foreign_keys:
        parent_key = object_key(fk.ref_schema, fk.ref_table)
        parent = inp.doc.table(fk.ref_schema, fk.ref_table)
        if parent is None or parent_key not in inp.plan or parent_key in inp.disabled:
            continue
        to = f"ref('{inp.plan[parent_key]['model']}')"
        fields = [(parent.column(c) or Column(name=c, ordinal=1, data_type="int")).name
                  for c in fk.ref_columns]  # fmt: skip
        cols = [t.column(c).name for c in fk.columns]  # type: ignore[union-attr]
        if len(cols) == 1:
            args = {"to": to, "field": quote(fields[0], target)}
            per_col[cols[0]].append({"relationships": {"arguments": args}})
        else:
            args = {"columns": [quote(c, target) for c in cols], "to": to,
                    "fields": [quote(f, target) for f in fields]}  # fmt: skip
            model_tests.append({RELATIONSHIP_MACRO: {"arguments": args}})
    return model_tests


def _staging_entry(inp: ProjectInputs, t: Table, pm: PlannedModel) -> dict[str, Any]:
    target = inp.config.target
    per_col, model_tests = _key_tests(t, target)
    model_tests += _fk_tests(inp, t, per_col)
    columns = []
    for c in t.columns:
        entry: dict[str, Any] = {"name": c.name, "quote": True, "description": _column_doc(c)}
        if per_col[c.name]:
            entry["data_tests"] = per_col[c.name]
        columns.append(entry)
    described = jinja_safe(
        t.description or f"Every row and column of {t.qualified_name}, cast to {target}."
    )
    out: dict[str, Any] = {"name": pm["model"], "description": described}
    if model_tests:
        out["data_tests"] = model_tests
    out["columns"] = columns
    return out


def _sources_doc(
    inp: ProjectInputs, source: str, tables: list[tuple[Table, PlannedModel]]
) -> dict[str, Any]:
    schema_var = "{{ var('datamigrate_raw_schema_" + source + "', '" + raw_schema(source) + "') }}"
    entries = [
        {"name": pm["sources"][0].split(".", 1)[1], "identifier": t.name,
         "description": jinja_safe(t.description or f"{t.qualified_name} from SQL Server.")}
        for t, pm in tables
    ]  # fmt: skip
    db = inp.doc.source.database or inp.doc.source.name
    return {"version": 2, "sources": [{
        "name": source, "schema": schema_var,
        "description": f"Raw tables of SQL Server {db}.{inp.sources[source]}.",
        "quoting": {"database": False, "schema": False, "identifier": True},
        "tables": entries,
    }]}  # fmt: skip


def _other_entry(inp: ProjectInputs, key: str, pm: PlannedModel) -> dict[str, Any]:
    obj = _routine(inp, key)
    kind = "view" if obj in inp.doc.views else "procedure"
    desc = jinja_safe(obj.description or f"Converted from SQL Server {kind} {obj.qualified_name}.")
    if key in inp.disabled:
        desc += " Disabled: " + jinja_safe(inp.disabled[key])
    return {"name": pm["model"], "description": desc}


def _routine(inp: ProjectInputs, key: str) -> View | Routine:
    return next(o for o in [*inp.doc.views, *inp.doc.procedures]
                if object_key(o.schema_, o.name) == key)  # fmt: skip


def _original_tsql(obj: View | Routine) -> str:
    # A Jinja comment ends at the first "#}": one in the source text must not end it early.
    text = obj.definition.strip().replace("#}", "# }")
    return f"{{# The original T-SQL of {obj.qualified_name}, untranslated:\n\n{text}\n#}}\n"


def _disabled_header(reason: str) -> str:
    text = " ".join(reason.split())[:1000].replace("*/", "* /")
    return (
        "{{ config(enabled=false) }}\n"
        f"/* Flagged by DataMigrate: {jinja_safe(text)}\n"
        "   Disabled so that the rest of the project builds: finish this model by hand, then\n"
        "   remove the config line above. */\n"
    )


def _model_sql(inp: ProjectInputs, key: str, pm: PlannedModel) -> str:
    if pm["layer"] == "staging":
        t = next(t for t in inp.doc.tables if object_key(t.schema_, t.name) == key)
        body = staging_sql(t, pm, inp.config.target, key in inp.safe_casts)
    elif key in inp.sql:
        body = jinja_safe_sql(inp.sql[key].rstrip().rstrip(";")) + "\n"
    else:
        body = _original_tsql(_routine(inp, key))
    if key in inp.disabled:
        return _disabled_header(inp.disabled[key]) + body
    return body


def write_project(inp: ProjectInputs) -> list[str]:
    """(Re)write the whole project; returns the model files written, relative to it."""
    root = inp.config.project_dir
    if (root / "models").exists():
        shutil.rmtree(root / "models")
    (root / "macros").mkdir(parents=True, exist_ok=True)
    (root / "macros" / "datamigrate_tests.sql").write_text(_MACROS, encoding="utf-8")
    _dump(root / "dbt_project.yml", _project_yml(inp))
    duckdb_default = str(inp.config.workspace / "warehouse.duckdb")
    _dump(root / "profiles.yml", profile_for(_project_name(inp.config), inp.config.target,
                                             inp.config.schema, duckdb_default))  # fmt: skip
    (root / ".gitignore").write_text("target/\ndbt_packages/\nlogs/\n", encoding="utf-8")
    return _write_models(inp, root)


def _write_models(inp: ProjectInputs, root: Path) -> list[str]:
    tables = {object_key(t.schema_, t.name): t for t in inp.doc.tables}
    groups: dict[tuple[str, str], list[str]] = {}
    written = []
    for key, pm in inp.plan.items():
        if pm["layer"] != "staging" and key not in inp.sql and key not in inp.disabled:
            continue
        groups.setdefault((pm["layer"], pm["source"]), []).append(key)
        (root / pm["path"]).parent.mkdir(parents=True, exist_ok=True)
        (root / pm["path"]).write_text(_model_sql(inp, key, pm), encoding="utf-8")
        written.append(pm["path"])
    for (layer, source), keys in groups.items():
        folder = root / "models" / layer / source
        if layer == "staging":
            pairs = [(tables[k], inp.plan[k]) for k in keys]
            _dump(folder / f"_{source}__sources.yml", _sources_doc(inp, source, pairs))
            models = [_staging_entry(inp, t, pm) for t, pm in pairs]
        else:
            models = [_other_entry(inp, k, inp.plan[k]) for k in keys]
        _dump(folder / f"_{source}__models.yml", {"version": 2, "models": models})
    return written
