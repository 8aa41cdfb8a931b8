"""The live extractor's catalogue queries: constant T-SQL over the ``sys`` views, by name.

No query takes user input; each returns plain columns and ``live`` assembles them. The names
are the keys of recorded result sets in tests (``tests/fixtures/extract/catalogue_*.json``).
"""

from __future__ import annotations

__all__ = ["QUERIES"]

_DESCRIPTION = (
    "LEFT JOIN sys.extended_properties ep ON ep.class = 1 AND ep.major_id = {obj} "
    "AND ep.minor_id = {minor} AND ep.name = 'MS_Description'"
)

#: The catalogue queries, by name. Each returns plain columns; the assembly is in Python.
QUERIES: dict[str, str] = {
    "server": "SELECT CAST(@@VERSION AS nvarchar(4000)) AS version, DB_NAME() AS database_name",
    "tables": (
        "SELECT t.object_id, s.name AS schema_name, t.name, "
        "CAST(ep.value AS nvarchar(4000)) AS description "
        "FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id "
        + _DESCRIPTION.format(obj="t.object_id", minor="0")
        + " WHERE t.is_ms_shipped = 0 ORDER BY s.name, t.name"
    ),
    "columns": (
        "SELECT c.object_id, c.column_id, c.name, ty.name AS type_name, "
        "bt.name AS base_type_name, ty.is_user_defined, c.max_length, c.precision, c.scale, "
        "c.is_nullable, c.is_rowguidcol, c.collation_name, "
        "CAST(ep.value AS nvarchar(4000)) AS description "
        "FROM sys.columns c JOIN sys.objects o ON o.object_id = c.object_id "
        "JOIN sys.types ty ON ty.user_type_id = c.user_type_id "
        "LEFT JOIN sys.types bt ON bt.user_type_id = ty.system_type_id "
        + _DESCRIPTION.format(obj="c.object_id", minor="c.column_id")
        + " WHERE o.is_ms_shipped = 0 AND o.type IN ('U', 'V') ORDER BY c.object_id, c.column_id"
    ),
    "identity_columns": (
        "SELECT ic.object_id, ic.column_id, CAST(ic.seed_value AS bigint) AS seed_value, "
        "CAST(ic.increment_value AS bigint) AS increment_value FROM sys.identity_columns ic "
        "JOIN sys.tables t ON t.object_id = ic.object_id"
    ),
    "computed_columns": (
        "SELECT cc.object_id, cc.column_id, cc.definition, cc.is_persisted "
        "FROM sys.computed_columns cc JOIN sys.tables t ON t.object_id = cc.object_id"
    ),
    "default_constraints": (
        "SELECT dc.parent_object_id AS object_id, dc.parent_column_id AS column_id, dc.name, "
        "dc.definition FROM sys.default_constraints dc"
    ),
    "key_constraints": (
        "SELECT kc.parent_object_id AS object_id, kc.name, kc.type, i.type_desc, "
        "ic.key_ordinal, c.name AS column_name FROM sys.key_constraints kc "
        "JOIN sys.indexes i ON i.object_id = kc.parent_object_id AND i.index_id = "
        "kc.unique_index_id JOIN sys.index_columns ic ON ic.object_id = i.object_id "
        "AND ic.index_id = i.index_id AND ic.key_ordinal > 0 "
        "JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id "
        "ORDER BY kc.parent_object_id, kc.name, ic.key_ordinal"
    ),
    "foreign_keys": (
        "SELECT fk.parent_object_id AS object_id, fk.name, rs.name AS ref_schema, "
        "rt.name AS ref_table, fk.delete_referential_action_desc, "
        "fk.update_referential_action_desc, fkc.constraint_column_id, pc.name AS column_name, "
        "rc.name AS ref_column_name FROM sys.foreign_keys fk "
        "JOIN sys.foreign_key_columns fkc ON fkc.constraint_object_id = fk.object_id "
        "JOIN sys.columns pc ON pc.object_id = fkc.parent_object_id "
        "AND pc.column_id = fkc.parent_column_id "
        "JOIN sys.columns rc ON rc.object_id = fkc.referenced_object_id "
        "AND rc.column_id = fkc.referenced_column_id "
        "JOIN sys.tables rt ON rt.object_id = fk.referenced_object_id "
        "JOIN sys.schemas rs ON rs.schema_id = rt.schema_id "
        "ORDER BY fk.parent_object_id, fk.name, fkc.constraint_column_id"
    ),
    "check_constraints": (
        "SELECT cc.parent_object_id AS object_id, cc.name, cc.definition, cc.parent_column_id "
        "FROM sys.check_constraints cc ORDER BY cc.parent_object_id, cc.name"
    ),
    "indexes": (
        "SELECT i.object_id, i.name, i.is_unique, i.type_desc, ic.key_ordinal, "
        "c.name AS column_name FROM sys.indexes i JOIN sys.tables t ON t.object_id = i.object_id "
        "JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id "
        "AND ic.key_ordinal > 0 "
        "JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id "
        "WHERE i.is_primary_key = 0 AND i.is_unique_constraint = 0 AND i.type > 0 "
        "AND i.is_hypothetical = 0 ORDER BY i.object_id, i.name, ic.key_ordinal"
    ),
    "modules": (
        "SELECT o.object_id, s.name AS schema_name, o.name, RTRIM(o.type) AS type, "
        "o.parent_object_id, m.definition, CAST(ep.value AS nvarchar(4000)) AS description "
        "FROM sys.objects o JOIN sys.schemas s ON s.schema_id = o.schema_id "
        "LEFT JOIN sys.sql_modules m ON m.object_id = o.object_id "
        + _DESCRIPTION.format(obj="o.object_id", minor="0")
        + " WHERE o.is_ms_shipped = 0 AND o.type IN ('V', 'P', 'FN', 'IF', 'TF', 'TR') "
        "ORDER BY s.name, o.name"
    ),
    "parameters": (
        "SELECT p.object_id, p.parameter_id, p.name, ty.name AS type_name, "
        "bt.name AS base_type_name, ty.is_user_defined, p.max_length, p.precision, p.scale, "
        "p.is_output FROM sys.parameters p JOIN sys.objects o ON o.object_id = p.object_id "
        "JOIN sys.types ty ON ty.user_type_id = p.user_type_id "
        "LEFT JOIN sys.types bt ON bt.user_type_id = ty.system_type_id "
        "WHERE o.is_ms_shipped = 0 ORDER BY p.object_id, p.parameter_id"
    ),
    "trigger_events": (
        "SELECT te.object_id, te.type_desc FROM sys.trigger_events te "
        "JOIN sys.triggers tr ON tr.object_id = te.object_id WHERE tr.parent_class = 1 "
        "ORDER BY te.object_id, te.type"
    ),
    "dependencies": (
        "SELECT d.referencing_id AS object_id, "
        "COALESCE(d.referenced_schema_name, OBJECT_SCHEMA_NAME(d.referenced_id)) "
        "AS ref_schema, d.referenced_entity_name AS ref_name "
        "FROM sys.sql_expression_dependencies d "
        "WHERE d.referenced_server_name IS NULL AND d.referenced_database_name IS NULL "
        "AND d.referenced_class = 1 ORDER BY d.referencing_id, ref_schema, ref_name"
    ),
    "row_counts": (
        "SELECT p.object_id, SUM(p.rows) AS row_count FROM sys.partitions p "
        "JOIN sys.tables t ON t.object_id = p.object_id WHERE p.index_id IN (0, 1) "
        "GROUP BY p.object_id"
    ),
    "user_types": (
        "SELECT s.name AS schema_name, t.name, bt.name AS base_type_name, t.max_length, "
        "t.precision, t.scale, t.is_nullable FROM sys.types t "
        "JOIN sys.schemas s ON s.schema_id = t.schema_id "
        "JOIN sys.types bt ON bt.user_type_id = t.system_type_id "
        "WHERE t.is_user_defined = 1 AND t.is_table_type = 0 AND t.is_assembly_type = 0 "
        "ORDER BY s.name, t.name"
    ),
}
