"""Who may ask: executor tokens, authorization, rate limits and the audit trail, with no protocol in it."""
