"""Redshift: the translation of key T-SQL constructs, row by row (sqlglot-style validate).

Each row: T-SQL in, the exact Redshift SQL out; the output must also parse in sqlglot's
``redshift`` dialect. Nothing runs: no Redshift account is used.
"""

from __future__ import annotations

import pytest
import sqlglot

from datamigrate_agent.translate import TranslationError, translate_statement

TARGET = "redshift"

#: Column types of the table the rows read (as the extract step reports them).
SCHEMA = {
    "dbo.person": {
        "id": "int",
        "given": "nvarchar(40)",
        "family": "nvarchar(40)",
        "active": "bit",
        "salary": "money",
        "born": "datetime",
        "units": "int",
        "per_box": "int",
    },
}

VALIDATE = [
    pytest.param(
        "SELECT given + ' ' + family FROM dbo.person",
        'SELECT "given" || \' \' || "family" FROM "person"',
        id="concat_plus_is_null_propagating_pipe",
    ),
    pytest.param(
        "SELECT units / per_box, units % per_box FROM dbo.person",
        'SELECT "units" / "per_box", "units" % "per_box" FROM "person"',
        id="int_division_truncates",
    ),
    pytest.param(
        "SELECT DATEDIFF(week, born, GETDATE()) FROM dbo.person",
        (
            'SELECT (((DATEDIFF(DAY, CAST("born" AS DATE), CAST(GETDATE() AS '
            "DATE)) + ((DATEDIFF(DAY, CAST('1899-12-31' AS DATE), CAST(\"born\" AS "
            "DATE)) % 7) + 7) % 7 - ((DATEDIFF(DAY, CAST('1899-12-31' AS DATE), "
            'CAST(GETDATE() AS DATE)) % 7) + 7) % 7) / 7)) FROM "person"'
        ),
        id="datediff_week_counts_sundays",
    ),
    pytest.param(
        "SELECT TOP 3 WITH TIES id FROM dbo.person ORDER BY salary DESC",
        (
            'SELECT "id" FROM "person" QUALIFY RANK() OVER (ORDER BY "salary" DESC '
            'NULLS LAST) <= 3 ORDER BY "salary" DESC NULLS LAST'
        ),
        id="top_with_ties_ranks",
    ),
    pytest.param(
        "SELECT TOP 10 PERCENT id FROM dbo.person ORDER BY id",
        (
            'SELECT "id" FROM "person" QUALIFY ROW_NUMBER() OVER (ORDER BY "id" '
            "NULLS FIRST) <= CEIL(CAST(COUNT(*) OVER () * 10 AS DOUBLE PRECISION) "
            '/ 100.0) ORDER BY "id" NULLS FIRST'
        ),
        id="top_percent_counts_rows",
    ),
    pytest.param(
        "SELECT COUNT(*) FROM dbo.person WHERE active = 1",
        'SELECT COUNT(*) FROM "person" WHERE "active" = TRUE',
        id="bit_compares_with_boolean",
    ),
    pytest.param(
        "SELECT CAST(salary AS MONEY), CONVERT(money, '1.5') FROM dbo.person",
        ('SELECT CAST("salary" AS DECIMAL(19, 4)), CAST(\'1.5\' AS DECIMAL(19, 4)) FROM "person"'),
        id="money_is_decimal_19_4",
    ),
    pytest.param(
        (
            "CREATE TABLE dbo.t (id INT IDENTITY(1,1) NOT NULL PRIMARY KEY, flag "
            "BIT NOT NULL DEFAULT 0, price MONEY)"
        ),
        (
            'CREATE TABLE "t" ("id" INTEGER IDENTITY(1, 1) NOT NULL PRIMARY KEY, '
            '"flag" BOOLEAN NOT NULL DEFAULT FALSE, "price" DECIMAL(19, 4))'
        ),
        id="identity_and_bit_ddl",
    ),
    pytest.param(
        ("WITH c AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM c WHERE n < 3) SELECT n FROM c"),
        (
            'WITH RECURSIVE "c" AS (SELECT 1 AS "n" UNION ALL SELECT "n" + 1 FROM '
            '"c" WHERE "n" < 3) SELECT "n" FROM "c"'
        ),
        id="recursive_cte_gets_keyword",
    ),
    pytest.param(
        "SELECT id FROM dbo.person WHERE given = 'Ada ' AND family LIKE 'by%'",
        (
            'SELECT "id" FROM "person" WHERE LOWER(TRIM(TRAILING \' \' FROM '
            "\"given\")) = 'ada' AND \"family\" ILIKE 'by%'"
        ),
        id="ci_trailing_space_compare_and_like",
    ),
    pytest.param(
        ("SELECT CONVERT(varchar(10), born, 112), LEN(given), ISNULL(given, 'x') FROM dbo.person"),
        (
            "SELECT TO_CHAR(CAST(\"born\" AS TIMESTAMP), 'YYYYMMDD'), "
            "LENGTH(TRIM(TRAILING ' ' FROM \"given\")), COALESCE(\"given\", 'x') FROM "
            '"person"'
        ),
        id="convert_style_len_isnull",
    ),
]

UNTRANSLATABLE = [
    pytest.param(
        (
            "SELECT p.id, x.n FROM dbo.person AS p OUTER APPLY (SELECT TOP 1 q.id "
            "AS n FROM dbo.person AS q WHERE q.id > p.id ORDER BY q.id) AS x"
        ),
        "OUTER APPLY needs a LATERAL join, which redshift lacks",
        id="outer_apply_is_left_lateral",
    ),
]


@pytest.mark.parametrize(("tsql", "expected"), VALIDATE)
def test_redshift_translation_matches_and_parses(tsql: str, expected: str) -> None:
    got = translate_statement(tsql, TARGET, schema=SCHEMA)
    assert got == expected
    sqlglot.parse_one(got, read=TARGET)


@pytest.mark.parametrize(("tsql", "reason"), UNTRANSLATABLE)
def test_redshift_untranslatable_construct_raises_its_reason(tsql: str, reason: str) -> None:
    with pytest.raises(TranslationError) as raised:
        translate_statement(tsql, TARGET, schema=SCHEMA)
    assert raised.value.reason == reason
