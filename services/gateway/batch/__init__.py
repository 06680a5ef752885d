"""Batch asset queries (多案集中查询): durable batches in the ledger, their runner, exports."""
