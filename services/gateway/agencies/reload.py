"""Reload the agency registry without a restart: on SIGHUP (server.py), when the file changes, and when
agencies registered at run time change.

The agencies asked are the registry file's, then those an administrator
registered at run time (the `managed` source: the ledger, shared by every
gateway, whose revision is polled with the file). An ID in both is the
file's. A registry file that fails to load or validate is rejected whole and
the set in use stays; so does the last known run-time set while the ledger
cannot be read. Otherwise new agencies get channels, unchanged ones keep theirs
(and their health), changed ones get new ones, and the channels of removed
or changed agencies close once every call that could still use them is over.
Queries prepared before a reload hold their own tuple of clients, so they
finish against the set they started with.
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from services.gateway.agencies.clients import AgencyClient, AgencyClients
from services.gateway.agencies.registry import AgencyConfig, RegistryError, load_registry

logger = logging.getLogger(__name__)

# (revision, entries) of the agencies registered at run time.
ManagedSource = Callable[[], Awaitable[tuple[int, tuple[AgencyConfig, ...]]]]


def merge(file_configs: tuple[AgencyConfig, ...], managed: tuple[AgencyConfig, ...]) -> tuple[AgencyConfig, ...]:
    """The file's entries, then the run-time ones whose IDs the file does not take."""
    taken = {config.id for config in file_configs}
    clashing = [config.id for config in managed if config.id in taken]
    if clashing:
        logger.error("agencies %s are registered at run time and in the registry file; the file's entries apply",
                     clashing)
    return file_configs + tuple(config for config in managed if config.id not in taken)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class RegistryReloader:
    def __init__(self, path: Path, clients: AgencyClients, *, poll_s: float, drain_s: float,
                 managed: ManagedSource | None = None, file_ids: frozenset[str] = frozenset(),
                 managed_state: tuple[int, tuple[AgencyConfig, ...]] = (0, ())):
        self.path = path
        self.clients = clients
        self.managed = managed
        # What the last good loads said: the file's IDs, and the run-time set with its revision.
        self.file_ids = file_ids
        self._revision, self._managed = managed_state
        self.poll_s = poll_s
        # Longer than any query or control drive that started before a reload.
        self.drain_s = drain_s
        self._seen = _signature(path)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._retiring: set[AgencyClient] = set()

    def start(self) -> None:
        # SIGHUP is the process's (server.py): it reloads this and the gateway's certificate.
        self._spawn(self._watch(), "registry watch")

    def request(self, reason: str) -> None:
        self._spawn(self.reload(reason), "registry reload")

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            seen = _signature(self.path)
            if seen != self._seen:
                await self.reload("file changed")
            elif self.managed is not None and await self._managed_moved():
                await self.reload("agencies changed at run time")

    async def _managed_moved(self) -> bool:
        try:
            revision, _ = await self.managed()
        except Exception as exc:  # the ledger's driver errors, timeouts: keep the set in use
            logger.warning("agencies registered at run time: cannot read the ledger (%s); keeping the %d known",
                           exc or type(exc).__name__, len(self._managed))
            return False
        return revision != self._revision

    async def reload(self, reason: str) -> bool:
        """Load, validate and apply the registry file; False (and the old set kept) when it is broken."""
        async with self._lock:
            self._seen = _signature(self.path)
            try:
                file_configs = load_registry(self.path)
            except RegistryError as exc:
                logger.error(
                    "agency registry reload (%s) rejected, still asking the %d agencies loaded before: %s",
                    reason, len(self.clients.all), exc,
                )
                return False
            if self.managed is not None:
                try:
                    self._revision, self._managed = await self.managed()
                except Exception as exc:  # as in _managed_moved
                    logger.warning("agencies registered at run time: cannot read the ledger (%s); keeping the %d"
                                   " known", exc or type(exc).__name__, len(self._managed))
            self.file_ids = frozenset(config.id for config in file_configs)
            configs = merge(file_configs, self._managed)
            current = self.clients.by_id
            wanted = {config.id for config in configs}
            clients: list[AgencyClient] = []
            added: list[str] = []
            changed: list[str] = []
            retired: list[tuple[AgencyClient, bool]] = []
            for config in configs:
                old = current.get(config.id)
                if old is not None and old.config == config:
                    clients.append(old)
                    continue
                clients.append(self.clients.open(config))
                if old is None:
                    added.append(config.id)
                else:
                    changed.append(config.id)
                    retired.append((old, False))
            removed = [agency_id for agency_id in current if agency_id not in wanted]
            retired.extend((current[agency_id], True) for agency_id in removed)
            self.clients.replace(tuple(clients))
            for client, gone in retired:
                await client.health.close(forget=gone)
                self._retiring.add(client)
                self._spawn(self._retire(client), f"retire {client.id}")
            if added or changed or removed:
                logger.info(
                    "agency registry reloaded (%s): %d agencies; added %s, changed %s, removed %s",
                    reason, len(clients), added or "none", changed or "none", removed or "none",
                    extra={"added": added, "changed": changed, "removed": removed},
                )
            else:
                logger.info("agency registry reloaded (%s): no change", reason)
            return True

    async def _retire(self, client: AgencyClient) -> None:
        try:
            await asyncio.sleep(self.drain_s)
        finally:
            self._retiring.discard(client)
            await client.close_channels()

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Cancelled retirements close their channels in `finally`.
        await asyncio.gather(*tasks, return_exceptions=True)
