"""Logging set-up shared by every service."""

import logging

from services.common.settings import env_str


def configure_logging(service: str) -> None:
    level = env_str("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
