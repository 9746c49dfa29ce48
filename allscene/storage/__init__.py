"""Ports and their backends. Only this package imports engines (duckdb, pyspark, redis,
sqlalchemy); everything else talks to the ports."""

from allscene.storage.eventlog import DEADLETTER_SCHEMA, AppendResult, ParquetEventLog

__all__ = ["DEADLETTER_SCHEMA", "AppendResult", "ParquetEventLog"]
