"""How the gateway dials its agencies: mutual TLS by default, plaintext only when told, loudly."""

import logging

import grpc

from services.common.tls import ClientTls, secure_agency_channel
from services.gateway.config import GatewaySettings
from services.gateway.agencies.registry import AgencyConfig

logger = logging.getLogger(__name__)


def agency_credentials(settings: GatewaySettings) -> grpc.ChannelCredentials | None:
    """The gateway's client credentials, built once for every agency channel; None for plaintext.

    Reading the files at start-up (not per channel) means a bad or expired
    certificate stops the gateway with a clear message instead of every
    agency turning UNAVAILABLE; rotate by restarting with new files.
    """
    if settings.insecure_plaintext:
        logger.warning(
            "INSECURE PLAINTEXT: the gateway dials the agencies without TLS; anyone on the path can read "
            "citizens' assets and impersonate an agency. Development only; unset INSECURE_PLAINTEXT and "
            "create certificates with `chakong pki init`."
        )
        return None
    tls = ClientTls.from_files(settings.agency_tls_ca, settings.agency_tls_cert, settings.agency_tls_key)
    if tls.names is not None:
        logger.info(
            "agencies over mutual TLS as %s (certificate expires %s)",
            tls.names.identity or tls.names.common_name,
            f"{tls.names.not_after:%Y-%m-%d}",
        )
    return tls.credentials()


def open_agency_channel(
    config: AgencyConfig, credentials: grpc.ChannelCredentials | None, options, address: str = ""
) -> grpc.aio.Channel:
    """mTLS that completes only if the agency's certificate names config.id; plaintext without credentials.

    `address`: one of the agency's endpoints (config.address by default); each names the same agency."""
    address = address or config.address
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=options)
    return secure_agency_channel(address, config.id, credentials, options)
