"""The agency endpoint under test: channels as the gateway and as other clients, calls by name, health, reflection, identity.

Everything goes over real gRPC (mutual TLS unless --plaintext), the way the
gateway dials an agency: the agency ID is the TLS server name, so a server
certificate that does not name the agency fails the handshake.
"""

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from protos.bank.v1 import bank_pb2
from protos.realestate.v1 import realestate_pb2
from protos.testing.v1 import testing_pb2
from protos.vehicle.v1 import vehicle_pb2
from services.common.tls import GATEWAY_IDENTITY, agency_identity, certificate_names

SERVICES = {
    "bank": bank_pb2.DESCRIPTOR.services_by_name["Bank"],
    "vehicle": vehicle_pb2.DESCRIPTOR.services_by_name["VehicleRegistry"],
    "realestate": realestate_pb2.DESCRIPTOR.services_by_name["RealEstateRegistry"],
}
TESTING = testing_pb2.DESCRIPTOR.services_by_name["AgencyTesting"]
QUERY_METHOD = {"bank": "QueryAccounts", "vehicle": "QueryVehicles", "realestate": "QueryProperties"}


class TargetError(Exception):
    """The endpoint cannot be reached or the TLS files are unusable: nothing can be checked."""


@dataclass(frozen=True)
class Credentials:
    """PEM bytes of a client identity."""

    cert: bytes
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class TargetOptions:
    address: str
    agency_id: str
    kind: str
    # None: plaintext (development only; identity cases are skipped).
    ca: bytes | None = None
    gateway: Credentials | None = None
    # A client certificate from the same CA naming someone else: must be refused.
    intruder: Credentials | None = None

    @property
    def plaintext(self) -> bool:
        return self.ca is None


@dataclass(frozen=True)
class Answer:
    """How one call ended."""

    code: grpc.StatusCode
    details: str
    response: Message | None
    elapsed_ms: float


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TargetError(f"{what} {str(path)!r}: {exc.strerror}") from None


def load_credentials(cert: str | Path, key: str | Path, what: str) -> Credentials:
    return Credentials(_read(cert, f"{what} certificate"), _read(key, f"{what} key"))


def load_ca(path: str | Path) -> bytes:
    return _read(path, "CA certificate")


class Target:
    """Open with `async with Target(options) as target:`."""

    def __init__(self, options: TargetOptions):
        self.options = options
        self.service = SERVICES[options.kind]
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def __aenter__(self) -> "Target":
        return self

    async def __aexit__(self, *exc) -> None:
        for channel in self._channels.values():
            await channel.close()

    def channel(self, who: str = "gateway") -> grpc.aio.Channel:
        """A channel presenting `who`: "gateway", "intruder" or "anonymous" (no client certificate)."""
        found = self._channels.get(who)
        if found is not None:
            return found
        options = self.options
        channel_options = [("grpc.enable_retries", 0)]
        if options.plaintext:
            channel = grpc.aio.insecure_channel(options.address, options=channel_options)
        else:
            identity = {"gateway": options.gateway, "intruder": options.intruder, "anonymous": None}[who]
            if who != "anonymous" and identity is None:
                raise TargetError(f"no {who} certificate given")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=options.ca,
                private_key=identity.key if identity else None,
                certificate_chain=identity.cert if identity else None,
            )
            channel_options.append(("grpc.ssl_target_name_override", options.agency_id))
            channel = grpc.aio.secure_channel(options.address, credentials, options=channel_options)
        self._channels[who] = channel
        return channel

    def request_type(self, method: str, *, testing: bool = False) -> type[Message]:
        service = TESTING if testing else self.service
        descriptor = service.methods_by_name.get(method)
        if descriptor is None:
            raise KeyError(f"{service.full_name} has no method {method!r}")
        return GetMessageClass(descriptor.input_type)

    async def call(
        self, method: str, request: Message, *, timeout_s: float, testing: bool = False, who: str = "gateway",
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> Answer:
        service = TESTING if testing else self.service
        descriptor = service.methods_by_name[method]
        stub = self.channel(who).unary_unary(
            f"/{service.full_name}/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=GetMessageClass(descriptor.output_type).FromString,
        )
        started = time.perf_counter()
        try:
            response = await stub(request, timeout=timeout_s, metadata=metadata or None)
        except grpc.aio.AioRpcError as exc:
            return Answer(exc.code(), exc.details() or "", None, (time.perf_counter() - started) * 1000)
        return Answer(grpc.StatusCode.OK, "", response, (time.perf_counter() - started) * 1000)

    async def health(self, service: str, *, who: str = "gateway", timeout_s: float = 5.0) -> Answer:
        stub = health_pb2_grpc.HealthStub(self.channel(who))
        started = time.perf_counter()
        try:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            return Answer(exc.code(), exc.details() or "", None, (time.perf_counter() - started) * 1000)
        return Answer(grpc.StatusCode.OK, "", response, (time.perf_counter() - started) * 1000)

    async def reflected_services(self, timeout_s: float = 5.0) -> tuple[list[str], str]:
        """The services server reflection lists, and which reflection version answered.

        v1 and v1alpha share one wire format, so the v1alpha messages serve both.
        """
        failures: list[str] = []
        for version in ("v1alpha", "v1"):
            method = self.channel().stream_stream(
                f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            # One request, then read the stream to its end, so the call is over before the next.
            call = method(timeout=timeout_s)
            try:
                await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
                await call.done_writing()
                responses = []
                while (response := await call.read()) is not grpc.aio.EOF:
                    responses.append(response)
            except grpc.aio.AioRpcError as exc:
                # A server without this version answers UNIMPLEMENTED, possibly before our write
                # lands (then the write reports it otherwise): either way, try the other version.
                failures.append(f"{version} {exc.code().name}: {exc.details()}")
                continue
            finally:
                call.cancel()
            if responses:
                return [s.name for s in responses[0].list_services_response.service], version
            failures.append(f"{version}: no answer")
        raise LookupError(f"server reflection did not answer ({'; '.join(failures)})")

    async def server_identity(self, timeout_s: float = 5.0) -> list[str]:
        """Problems with the server certificate the agency presents (empty: it names the agency as it must).

        A TLS handshake of our own, checking the DNS name the gateway checks
        (the agency ID) and reading the URI the contract asks for.
        """
        options = self.options
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=options.ca.decode())
        context.set_alpn_protocols(["h2"])
        if options.gateway is not None:
            import tempfile

            with tempfile.NamedTemporaryFile("wb") as cert, tempfile.NamedTemporaryFile("wb") as key:
                cert.write(options.gateway.cert), key.write(options.gateway.key)
                cert.flush(), key.flush()
                context.load_cert_chain(cert.name, key.name)
        host, _, port = options.address.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port), ssl=context, server_hostname=options.agency_id),
                timeout_s,
            )
        except ssl.SSLCertVerificationError as exc:
            return [f"the server certificate does not verify for DNS name {options.agency_id!r} against the CA:"
                    f" {exc.verify_message}"]
        except (OSError, asyncio.TimeoutError) as exc:
            return [f"TLS handshake with {options.address} failed: {exc}"]
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            # Abort, not close: an HTTP/2 server waiting for its preface does not answer a TLS
            # close_notify, and asyncio would wait 30 s for it.
            writer.transport.abort()
            await asyncio.sleep(0)
        names = certificate_names(x509.load_der_x509_certificate(der))
        problems = []
        wanted = agency_identity(options.agency_id)
        if wanted not in names.uris:
            problems.append(f"the server certificate's URI names are {list(names.uris) or 'none'}; expected {wanted}")
        elif names.identity != wanted:
            problems.append(f"the server certificate carries several spiffe:// URIs {list(names.uris)}; expected one")
        if GATEWAY_IDENTITY in names.uris:
            problems.append("the server certificate names the gateway")
        return problems
