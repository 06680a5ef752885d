"""The web console (控制台): server-rendered pages over the gateway's public HTTP API, for executors and the command centre."""
