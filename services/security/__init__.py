"""Security building blocks: PKI, executor tokens, the audit trail and rate limits."""
