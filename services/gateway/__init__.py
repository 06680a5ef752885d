"""The asset gateway: one court query fanned out to every agency, over gRPC and HTTP/JSON."""
