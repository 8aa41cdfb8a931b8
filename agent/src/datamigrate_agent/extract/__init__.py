"""Extract: read a SQL Server source (a T-SQL script or a live catalogue) into metadata.

``script.read_script`` parses a script, ``live.read_catalogue`` queries a server; both return a
``metadata.MetadataDocument`` plus sample rows, and ``cli`` writes them to the workspace.
"""

__all__: list[str] = []
