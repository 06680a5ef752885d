"""Control actions exactly once: kinds, validation, rules, the service, the driver and re-driver, messages."""
