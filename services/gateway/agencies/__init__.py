"""The agencies as the gateway reaches them: registry, channels and TLS, health and ejection, reload, instrumented calls."""
