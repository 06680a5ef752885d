"""Exit 0 when a gRPC server reports SERVING: `python -m services.common.healthcheck HOST:PORT [SERVICE]`.

Used by docker-compose health checks, which must ask the service itself
rather than only test that a port is open. Beside an agency serving mutual
TLS (TLS_CERT, TLS_KEY and TLS_CA set) it dials TLS with that agency's own
certificate, expecting the server to be AGENCY_ID: health is open to any
certificate the project CA issued (services.common.tls.OPEN_METHODS).
Beside the gateway (CHAKONG_CA set, as for the CLI) it dials TLS trusting
that CA; plaintext only when neither is set.
"""

import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    address, service = argv[0], argv[1] if len(argv) == 2 else ""
    with _channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=3
            )
        except grpc.RpcError as exc:
            print(f"{address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def _channel(address: str) -> grpc.Channel:
    files = [os.environ.get(name, "") for name in ("TLS_CA", "TLS_KEY", "TLS_CERT")]
    if not all(files):
        if os.environ.get("CHAKONG_CA"):
            credentials = grpc.ssl_channel_credentials(root_certificates=Path(os.environ["CHAKONG_CA"]).read_bytes())
            return grpc.secure_channel(address, credentials)
        return grpc.insecure_channel(address)
    ca, key, cert = (Path(f).read_bytes() for f in files)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    options = [("grpc.ssl_target_name_override", os.environ["AGENCY_ID"])] if os.environ.get("AGENCY_ID") else []
    return grpc.secure_channel(address, credentials, options=options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
