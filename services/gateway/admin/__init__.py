"""Agencies registered, updated and removed at run time: kept in the ledger, applied by the registry reloader."""
