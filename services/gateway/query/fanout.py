"""The asset query: one request fanned out to the selected agencies in parallel under one deadline."""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from tenacity.wait import wait_random_exponential

from protos.gateway.v1 import gateway_pb2
from services.common.logs import mask_id, request_id_var
from services.common.validation import FieldError, validate_case, validate_subject, validate_token
from services.gateway.access.labels import COURTS
from services.gateway.agencies.calls import InvalidResponse, NoTimeLeft, RetryPolicy, cancel_unblamed
from services.gateway.agencies.clients import AgencyClient, AgencyClients, QueryRequest
from services.gateway.agencies.metrics import TIMEOUT as AGENCY_TIMEOUT
from services.gateway.query.answers import problem as check_response
from services.gateway.query.answers import reject as reject_response
from services.gateway.query.metrics import query_metrics

logger = logging.getLogger(__name__)

# UNAVAILABLE is the one code proving the agency did not act on the call.
# Full jitter over 0-20 ms, then 0-40 ms: spreads retries from many queries
# without spending a noticeable part of the deadline.
QUERY_RETRIES = RetryPolicy(
    max_attempts=3,
    min_attempt_s=0.02,
    backoff=wait_random_exponential(multiplier=0.02, max=0.2),
    codes=frozenset({grpc.StatusCode.UNAVAILABLE}),
)
# Leave the gRPC caller this much of its own deadline to receive the answer.
CALLER_DEADLINE_MARGIN_S = 0.025

OK = gateway_pb2.AGENCY_STATUS_OK
TIMEOUT = gateway_pb2.AGENCY_STATUS_TIMEOUT
UNAVAILABLE = gateway_pb2.AGENCY_STATUS_UNAVAILABLE
ERROR = gateway_pb2.AGENCY_STATUS_ERROR
_STATUS_BY_CODE = {
    grpc.StatusCode.DEADLINE_EXCEEDED: TIMEOUT,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class PreparedQuery:
    """A validated request, encoded once for every agency."""

    request_id: str
    agencies: tuple[AgencyClient, ...]
    deadline_ms: int
    budget_s: float
    # QueryRequest bytes, the same for every agency kind. The request ID
    # travels in the message (field 1), so agency calls carry no metadata:
    # per-call metadata costs both ends about 20 us a call.
    payload: bytes
    masked_subject: str
    # The metrics' court label (access/labels.py): the request's court if a case of it is registered.
    court: str = ""
    # What was asked, for the record of the query (query/late.py).
    request: gateway_pb2.AssetQueryRequest | None = None
    # Each agency's attempt may take until the caller's deadline, not only
    # its registry timeout: calls within an answer window (batches, late answers).
    windowed: bool = False


class _Tally:
    """Summary sums over the results that came back OK."""

    __slots__ = ("asked", "ok", "total", "available", "frozen", "accounts", "vehicles", "properties")

    def __init__(self, asked: int):
        self.asked = asked
        self.ok = self.total = self.available = self.frozen = 0
        self.accounts = self.vehicles = self.properties = 0

    def add(self, result: gateway_pb2.AgencyResult) -> None:
        if result.status != OK:
            return
        self.ok += 1
        accounts = result.accounts
        if accounts:
            self.accounts += len(accounts)
            for account in accounts:
                self.total += account.balance_fen
                self.available += account.available_balance_fen
                self.frozen += account.frozen_fen
        self.vehicles += len(result.vehicles)
        self.properties += len(result.properties)

    def fill(self, response: gateway_pb2.AssetQueryResponse) -> None:
        summary = response.summary
        summary.total_balance_fen = self.total
        summary.available_balance_fen = self.available
        summary.frozen_fen = self.frozen
        summary.account_count = self.accounts
        summary.vehicle_count = self.vehicles
        summary.property_count = self.properties
        summary.agencies_asked = self.asked
        summary.agencies_ok = self.ok
        response.complete = self.ok == self.asked


class FanOut:
    """Runs asset queries against the agencies; shared by the gRPC and HTTP APIs."""

    def __init__(self, clients: AgencyClients, default_deadline_ms: int):
        self.clients = clients
        self.default_deadline_ms = default_deadline_ms
        # Calls cut off at a deadline finish cancelling in the background;
        # held here so they are not collected early and can be awaited on close.
        self._stragglers: set[asyncio.Task] = set()
        # Records every query and follows up the agencies cut off (query/late.py); set by root.py.
        self.late = None

    def prepare(
        self, request: gateway_pb2.AssetQueryRequest, *, caller_time_remaining: float | None = None
    ) -> PreparedQuery:
        """Validate the request (FieldError names the field) and encode it for the agencies.

        deadline_ms 0 means the default; a larger value than the default is
        lowered to it, so a caller cannot hold agency calls open longer than
        the operator allows. A gRPC caller's own, shorter deadline also counts.
        """
        validate_token(request.request_id, "request_id", required=False)
        validate_case(request.case)
        validate_subject(request.subject)
        if request.agency_ids:
            agencies = self.select(request.agency_ids)
        else:
            agencies = self.clients.all
        deadline_ms = request.deadline_ms
        if deadline_ms < 0:
            raise FieldError("deadline_ms", "must not be negative (0 means the gateway's default)")
        if deadline_ms == 0 or deadline_ms > self.default_deadline_ms:
            deadline_ms = self.default_deadline_ms
        budget_s = deadline_ms / 1000
        if caller_time_remaining is not None:
            budget_s = max(0.0, min(budget_s, caller_time_remaining - CALLER_DEADLINE_MARGIN_S))
        request_id = request.request_id or uuid.uuid4().hex
        payload = QueryRequest(
            request_id=request_id, case=request.case, subject=request.subject
        ).SerializeToString()
        return PreparedQuery(
            request_id=request_id,
            agencies=agencies,
            deadline_ms=deadline_ms,
            budget_s=budget_s,
            payload=payload,
            masked_subject=mask_id(request.subject.id_number),
            court=COURTS.label(request.case.court_code),
            request=request,
        )

    def select(self, agency_ids) -> tuple[AgencyClient, ...]:
        """The agencies named (FieldError for an unknown or repeated one), in registry order."""
        by_id = self.clients.by_id
        wanted: set[str] = set()
        for agency_id in agency_ids:
            if agency_id not in by_id:
                raise FieldError("agency_ids", f'unknown agency "{agency_id}"; see ListAgencies')
            if agency_id in wanted:
                raise FieldError("agency_ids", f'agency "{agency_id}" is named more than once')
            wanted.add(agency_id)
        # Registry order, whatever order the caller named them in.
        return tuple(client for client in self.clients.all if client.id in wanted)

    async def query(self, query: PreparedQuery, api: str) -> gateway_pb2.AssetQueryResponse:
        """Every agency's result in registry order, at the latest when the deadline passes."""
        request_id_var.set(query.request_id)
        started = time.monotonic()
        deadline = started + query.budget_s
        response = gateway_pb2.AssetQueryResponse(request_id=query.request_id)
        # Each call fills its own slot of the response: no copies afterwards.
        slots = []
        tasks = []
        create_task = asyncio.create_task
        for client in query.agencies:
            result = response.results.add(agency_id=client.id, kind=client.kind, display_name=client.name)
            slots.append(result)
            tasks.append(create_task(self._ask(client, result, query, started, deadline)))
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:
            # The caller went away (its call cancelled): the agencies are not to blame.
            self._cut_off(tasks, slots, query, started, unblamed=True)
            raise
        self._cut_off(tasks, slots, query, started)
        tally = _Tally(len(slots))
        for result in slots:
            tally.add(result)
        tally.fill(response)
        response.latency_ms = (time.monotonic() - started) * 1000
        self._finished(query, api, response, slots)
        return response

    async def stream(self, query: PreparedQuery, api: str) -> AsyncIterator[gateway_pb2.AssetQueryEvent]:
        """Each agency's result the moment it arrives, then one final event with the summary.

        Close the generator (contextlib.aclosing) to cancel outstanding calls early.
        """
        request_id_var.set(query.request_id)
        started = time.monotonic()
        deadline = started + query.budget_s
        unsent: dict[str, gateway_pb2.AssetQueryEvent] = {}
        slots = []
        tasks = []
        create_task = asyncio.create_task
        for client in query.agencies:
            event = gateway_pb2.AssetQueryEvent()
            result = event.result
            result.agency_id = client.id
            result.kind = client.kind
            result.display_name = client.name
            unsent[client.id] = event
            slots.append(result)
            tasks.append(create_task(self._ask(client, result, query, started, deadline)))
        tally = _Tally(len(tasks))
        try:
            try:
                for arrival in asyncio.as_completed(tasks, timeout=max(0.0, deadline - time.monotonic())):
                    result = await arrival
                    event = unsent.pop(result.agency_id)
                    tally.add(result)
                    yield event
            except TimeoutError:
                pass
            # Past the deadline: the calls cut off, and any that finished in
            # the same instant, in registry order.
            self._cut_off(tasks, slots, query, started)
            for event in list(unsent.values()):
                tally.add(event.result)
                yield event
            unsent.clear()
        finally:
            # Still outstanding here only when the caller closed the stream early: no blame on the agencies.
            self._cut_off(tasks, slots, query, started, unblamed=True)
        final = gateway_pb2.AssetQueryEvent()
        summary = final.final
        summary.request_id = query.request_id
        tally.fill(summary)
        summary.latency_ms = (time.monotonic() - started) * 1000
        self._finished(query, api, summary, slots)
        yield final

    def _cut_off(self, tasks, slots, query: PreparedQuery, started: float, *, unblamed: bool = False) -> None:
        """Cancel calls still outstanding and mark them TIMEOUT; `unblamed`: the caller went away (CANCELLED).

        A deadline that gave an agency less than its own timeout is the caller's choice, not a sign the
        agency is down: its cut-off counts TIMEOUT without telling the agency's health."""
        now = time.monotonic()
        for task, result, client in zip(tasks, slots, query.agencies):
            if task.done() or task.cancelling():
                continue
            if unblamed:
                cancel_unblamed(task)
            elif query.budget_s < client.timeout_s:
                cancel_unblamed(task, AGENCY_TIMEOUT)
            else:
                task.cancel()
            self._stragglers.add(task)
            task.add_done_callback(self._stragglers.discard)
            result.status = TIMEOUT
            result.error_message = f"DEADLINE_EXCEEDED: no answer within the query deadline of {query.deadline_ms} ms"
            result.latency_ms = (now - started) * 1000

    def _finished(self, query: PreparedQuery, api: str, response: gateway_pb2.AssetQueryResponse, results) -> None:
        query_metrics(api).finished(response.complete, response.latency_ms / 1000, query.court, query.request_id)
        if self.late is not None:
            self.late.finished(query, results, response.latency_ms)
        summary = response.summary
        logger.info(
            "query %s: %s answered by %d of %d agencies in %.1f ms",
            query.request_id,
            query.masked_subject,
            summary.agencies_ok,
            summary.agencies_asked,
            response.latency_ms,
            extra={
                "api": api,
                "agencies_asked": summary.agencies_asked,
                "agencies_ok": summary.agencies_ok,
                "complete": response.complete,
                "latency_ms": round(response.latency_ms, 1),
            },
        )

    async def _ask(
        self,
        client: AgencyClient,
        result: gateway_pb2.AgencyResult,
        query: PreparedQuery,
        started: float,
        deadline: float,
    ) -> gateway_pb2.AgencyResult:
        """Fill `result` with one agency's answer or failure; never raises but CancelledError."""
        if client.health.ejected:
            # Ejected: answer at once rather than spend the deadline on a peer known to be down.
            client.query.skipped()
            result.status = UNAVAILABLE
            result.error_message = client.health.refusal()
            result.latency_ms = (time.monotonic() - started) * 1000
            return result
        try:
            try:
                response = await self._attempt(client, result, query, deadline)
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                    raise
                response = await QUERY_RETRIES.run(
                    lambda: self._attempt(client, result, query, deadline), deadline, first_error=exc
                )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            result.status = _STATUS_BY_CODE.get(code, ERROR)
            result.error_message = f"{code.name}: {exc.details() or ''}"
        except InvalidResponse as exc:
            # Counted as an agency error (INVALID_RESPONSE) by the call itself.
            logger.warning("query %s: agency %s answered invalidly: %s", query.request_id, client.id, exc.problem)
            reject_response(result, exc.problem)
        except NoTimeLeft:
            result.status = TIMEOUT
            result.error_message = f"DEADLINE_EXCEEDED: no answer within the query deadline of {query.deadline_ms} ms"
        except Exception as exc:  # a bug here must cost one agency's result, not the query
            logger.exception("query %s: agency %s failed unexpectedly", query.request_id, client.id)
            result.status = ERROR
            result.error_message = f"INTERNAL: gateway error: {type(exc).__name__}"
        else:
            client.fill(response, result)
            result.status = OK
        result.latency_ms = (time.monotonic() - started) * 1000
        return result

    async def ask(self, client: AgencyClient, query: PreparedQuery, deadline: float) -> gateway_pb2.AgencyResult:
        """One agency's answer or failure by `deadline` (time.monotonic()), for callers that keep their own
        windows (the batch runner)."""
        result = gateway_pb2.AgencyResult(agency_id=client.id, kind=client.kind, display_name=client.name)
        return await self._ask(client, result, query, time.monotonic(), deadline)

    async def _attempt(self, client: AgencyClient, result, query: PreparedQuery, deadline: float):
        """One call, under min(agency timeout, time left); a windowed query's under the time left."""
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            raise NoTimeLeft
        caller_deadline = timeout < client.timeout_s
        if not caller_deadline and not query.windowed:
            timeout = client.timeout_s
        result.attempts += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("query %s: %s attempt %d", query.request_id, client.id, result.attempts)
        # What the agency says is checked before it is shown or summed.
        return await client.query(query.payload, timeout=timeout, check=check_response, caller_deadline=caller_deadline)

    async def aclose(self) -> None:
        """Wait for calls cut off at a deadline to finish cancelling."""
        if self._stragglers:
            await asyncio.wait(list(self._stragglers), timeout=1.0)
