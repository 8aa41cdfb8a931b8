"""DataMigrate's agent: SQL Server catalogue or T-SQL script to a checked dbt project."""

__all__ = ["__version__"]

__version__ = "0.1.0"
