"""Connection to TWS / IB Gateway (or the simulated gateway): client ids, reconnection, health.

The console owns one :class:`Connection`. It wraps one ``ib_async.IB`` for the whole
session, so everything subscribed to that ``IB``'s events stays subscribed across
reconnects. The seed's module-level functions :func:`connect_to_IB` and
:func:`disconnect_from_IB` drive a default connection for scripts and strategies.

What happens when the link breaks:

* The socket closes (gateway restart, network): the state goes to ``RECONNECTING`` and
  connection attempts follow with capped exponential backoff and jitter until one
  succeeds or ``max_attempts`` is exhausted (``GIVEN_UP``).
* The socket stays open but nothing answers: a heartbeat (``reqCurrentTime``) that does
  not come back within ``heartbeat_timeout`` closes the socket, which starts the above.
* The gateway reports it lost IB (error 1100): state ``LINK_LOST``; 1101/1102 bring it
  back to ``CONNECTED`` (1101 means market data subscriptions were lost). A 1100 heard
  while connecting (TWS just restarted, not logged in to IB yet: its nightly reset)
  makes the new session start in ``LINK_LOST``, not ``CONNECTED``.

ib_async clears its session state on every disconnect and re-requests positions, open
orders and the day's executions on connect. Executions from that replay are *not*
emitted as live fill events: :class:`core.trading.TradeManager` re-reads them after
every ``connected`` event and de-duplicates by execution id, which is how a fill that
happened while disconnected is delivered exactly once.

The status types (:class:`core.events.ConnectionState`,
:class:`core.events.ConnectionStatusChanged`) live in :mod:`core.events` with the other
events and are re-exported here. The reconnect loop, the heartbeat and each connect
attempt run as :class:`core.tasks.Tasks` (``connection:reconnect`` and so on), all
cancelled by :meth:`Connection.disconnect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventkit import Event
from ib_async import IB
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential_jitter,
)

from core.compat import socket_handlers
from core.events import ConnectionState, ConnectionStatusChanged
from core.tasks import Tasks

log = logging.getLogger(__name__)

#: IB error codes that concern the connection itself, not a request.
CLIENT_ID_IN_USE = 326
CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED_DATA_LOST = 1101
CONNECTIVITY_RESTORED = 1102


class ClientIdInUse(ConnectionError):
    """The gateway refused the client id (IB error 326)."""


class ConnectionFailed(ConnectionError):
    """No connection could be made; the message says why."""


class ClientIdRegistry:
    """Client ids in use by this process, so strategies and consoles don't collide.

    Ids taken by *other* processes are discovered through error 326 and remembered
    with :meth:`mark_foreign`, so the next attempt skips them.
    """

    def __init__(self) -> None:
        self._ours: set[int] = set()
        self._foreign: set[int] = set()

    def claim(self, preferred: int) -> int:
        """Claim ``preferred`` or the next free id above it."""
        cid = preferred
        while cid in self._ours or cid in self._foreign:
            cid += 1
        self._ours.add(cid)
        return cid

    def release(self, client_id: int) -> None:
        """Give an id back when its connection closes for good."""
        self._ours.discard(client_id)

    def mark_foreign(self, client_id: int) -> None:
        """Remember an id that another process holds (error 326)."""
        self._ours.discard(client_id)
        self._foreign.add(client_id)

    def in_use(self) -> frozenset[int]:
        """Ids this process holds."""
        return frozenset(self._ours)


#: One registry per process.
client_ids = ClientIdRegistry()


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Backoff and heartbeat settings; ``max_attempts=None`` retries forever."""

    initial_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_attempts: int | None = None
    heartbeat_interval: float = 10.0
    heartbeat_timeout: float = 5.0
    max_client_id_tries: int = 16


class SlicedReader:
    """Feeds ib_async's decoder a slice at a time so a burst never stalls the loop.

    ib_async decodes everything a socket read returned in one synchronous call, and
    copies the remaining buffer after every message: a tick storm arrives in reads of
    megabytes and the loop (the GUI's, under qasync) stalls for hundreds of
    milliseconds, which makes the next read bigger still. This reader queues incoming
    bytes and hands them to the client in ``chunk`` byte slices, returning to the loop
    whenever ``budget`` seconds are used. Bytes queued when the socket closes are
    decoded before the close is reported, so no message (a fill) is dropped. Reading
    pauses while more than ``high_water`` bytes wait.

    Bytes still queued when the console itself closes the session (``ib.disconnect``,
    as the heartbeat does) are dropped: ib_async has already forgotten that session, so
    decoding them would feed its ticks to no one and its bytes into the next session's
    handshake. Nothing is lost by it: executions are replayed after the reconnect.
    """

    def __init__(
        self,
        ib: IB,
        *,
        chunk: int = 16_384,
        budget: float = 0.004,
        high_water: int = 8 * 1024 * 1024,
    ) -> None:
        self.client = ib.client
        self.chunk = chunk
        self.budget = budget
        self.high_water = high_water
        self._buf = bytearray()
        self._scheduled = False
        self._paused = False
        self.last_data = 0.0
        conn = self.client.conn
        self._decode, self._closed = socket_handlers(ib)
        conn.hasData -= self._decode
        conn.hasData += self._on_data
        conn.disconnected -= self._closed
        conn.disconnected += self._on_disconnected

    @property
    def backlog(self) -> int:
        """Bytes received and not yet decoded."""
        return len(self._buf)

    def _on_data(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        self._buf += data
        if len(self._buf) > self.high_water and not self._paused:
            self._pause(True)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _stale(self) -> bool:
        """True when the session these bytes came from was closed by the console."""
        if self._buf and self.client.connState == self.client.DISCONNECTED:
            log.info("dropping %d undecoded bytes of a closed session", len(self._buf))
            self._buf = bytearray()
            if self._paused:
                self._pause(False)
            return True
        return False

    def _drain(self) -> None:
        self._scheduled = False
        if self._stale():
            return
        start = time.perf_counter()
        while self._buf:
            piece = bytes(self._buf[: self.chunk])
            del self._buf[: self.chunk]
            self._decode(piece)
            if time.perf_counter() - start > self.budget:
                break
        if self._buf:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)
        elif self._paused:
            self._pause(False)

    def _on_disconnected(self, msg: str) -> None:
        if self._buf and not self._stale():
            data, self._buf = bytes(self._buf), bytearray()
            self._decode(data)
        self._paused = False
        self._closed(msg)

    def _pause(self, pause: bool) -> None:
        transport = getattr(self.client.conn, "transport", None)
        if transport is None:
            return
        with contextlib.suppress(Exception):  # a closing transport may refuse either
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()
            self._paused = pause


class Connection:
    """The console's connection to a TWS API server.

    Events:
        * ``statusChanged`` (status: :class:`ConnectionStatusChanged`)
        * ``connected`` (reconnect: bool): the session is synchronised (positions,
          orders, executions loaded); emitted after the first connect and every reconnect.
        * ``marketDataLost`` (): the gateway reported 1101; subscriptions must be renewed.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 1,
        *,
        timeout: float = 10.0,
        readonly: bool = False,
        account: str = "",
        policy: ReconnectPolicy | None = None,
        ib: IB | None = None,
        registry: ClientIdRegistry | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.preferred_client_id = client_id
        self.client_id = client_id
        self.timeout = timeout
        self.readonly = readonly
        self.account = account
        self.policy = policy or ReconnectPolicy()
        self.ib = ib or IB()
        self.reader = SlicedReader(self.ib)
        self._registry = registry or client_ids
        self.state = ConnectionState.DISCONNECTED
        self.last_status: ConnectionStatusChanged | None = None
        self.statusChanged: Event = Event("statusChanged")
        self.connected: Event = Event("connected")
        self.marketDataLost: Event = Event("marketDataLost")
        self._closing = False
        self._ever_connected = False
        self._tasks = Tasks("connection")
        self._id_refused: asyncio.Future[int] | None = None
        self._ib_link_lost = False  # the gateway said 1100 and no 1101/1102 since
        self.ib.errorEvent += self._on_ib_error
        self.ib.disconnectedEvent += self._on_disconnected

    # -- public API --------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True while the API session is up (even if the gateway lost IB: ``LINK_LOST``)."""
        return self.ib.isConnected()

    async def connect(self) -> IB:
        """Connect once, trying the next free client id on error 326.

        Raises :class:`ConnectionFailed` if the server cannot be reached or no client id
        is free; automatic reconnection starts only after a first success.
        """
        self._closing = False
        try:
            await self._connect_once(attempt=0)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self._set_state(ConnectionState.DISCONNECTED, reason=_reason(exc))
            raise ConnectionFailed(
                f"cannot connect to {self.host}:{self.port}: {_reason(exc)}"
            ) from exc
        self._start_heartbeat()
        return self.ib

    def keep_trying(self) -> None:
        """After a failed first :meth:`connect`: keep connecting in the background, with
        the reconnection backoff (``RECONNECTING`` statuses carry the attempt and the
        next try), until it succeeds, ``max_attempts`` runs out, or :meth:`disconnect`."""
        self._closing = False
        self._tasks.ensure("reconnect", self._reconnect)

    async def disconnect(self) -> None:
        """Close for good: no reconnection follows."""
        self._closing = True
        await self._tasks.cancel_all()  # the reconnect loop and the heartbeat
        if self.ib.isConnected():
            self.ib.disconnect()
        self._registry.release(self.client_id)
        self._set_state(ConnectionState.DISCONNECTED, reason="closed by the user")

    # -- connecting --------------------------------------------------------------------

    async def _connect_once(self, attempt: int) -> None:
        """One connection, walking client ids on 326."""
        if self.client_id not in self._registry.in_use():
            # first connect, or the previous id was lost to another process
            self.client_id = self._registry.claim(self.preferred_client_id)
        for _ in range(self.policy.max_client_id_tries):
            self._set_state(
                ConnectionState.RECONNECTING if attempt else ConnectionState.CONNECTING,
                attempt=attempt,
            )
            try:
                await self._connect_with_client_id()
            except ClientIdInUse:
                taken = self.client_id
                self._registry.mark_foreign(taken)
                self.client_id = self._registry.claim(taken + 1)
                log.warning("client id %d is in use; trying %d", taken, self.client_id)
                continue
            except BaseException:
                self._registry.release(self.client_id)
                raise
            self._ever_connected = True
            if self._ib_link_lost:
                self._set_state(
                    ConnectionState.LINK_LOST, reason="gateway not logged in to IB (1100)"
                )
            else:
                self._set_state(ConnectionState.CONNECTED)
            log.info(
                "connected to %s:%s as client %d, accounts %s",
                self.host,
                self.port,
                self.client_id,
                ",".join(self.ib.managedAccounts()),
            )
            self.connected.emit(attempt > 0)
            return
        raise ConnectionFailed(
            f"no free client id among {self.policy.max_client_id_tries} tried "
            f"from {self.preferred_client_id}"
        )

    async def _connect_with_client_id(self) -> None:
        # ib_async only notices 326 by its connect timeout (apiStart never fires), so the
        # error handler resolves this future and the attempt is abandoned at once.
        loop = asyncio.get_running_loop()
        self._ib_link_lost = False  # a new session: the gateway says 1100 again if so
        self._id_refused = loop.create_future()
        connect = self._tasks.spawn(
            self.ib.connectAsync(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=self.timeout,
                readonly=self.readonly,
                account=self.account,
            ),
            "connect",
            awaited=True,  # its failure is this attempt's, raised below
        )
        try:
            done, _ = await asyncio.wait(
                {connect, self._id_refused}, return_when=asyncio.FIRST_COMPLETED
            )
            if self._id_refused in done:
                connect.cancel()
                with contextlib.suppress(BaseException):
                    await connect
                if self.ib.isConnected():
                    self.ib.disconnect()
                raise ClientIdInUse(f"client id {self.client_id} is in use")
            connect.result()
        finally:
            if not self._id_refused.done():
                self._id_refused.cancel()
            self._id_refused = None

    # -- reconnection ------------------------------------------------------------------

    def _on_disconnected(self) -> None:
        if self._closing or not self._ever_connected:
            return
        if self.state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            return  # a failed attempt inside the retry loop, which handles it
        self._set_state(ConnectionState.DISCONNECTED, reason="connection lost")
        self._tasks.ensure("reconnect", self._reconnect)

    async def _reconnect(self) -> None:
        policy = self.policy
        attempt = 0

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else None
            self._set_state(
                ConnectionState.RECONNECTING,
                attempt=state.attempt_number,
                next_retry_in=delay,
                reason=_reason(exc) if exc else "",
            )

        try:
            retrying = AsyncRetrying(
                wait=wait_exponential_jitter(
                    multiplier=policy.initial_delay, max=policy.max_delay, jitter=policy.jitter
                ),
                stop=stop_after_attempt(policy.max_attempts) if policy.max_attempts else stop_never,
                retry=retry_if_exception_type((OSError, TimeoutError, ConnectionError)),
                before_sleep=before_sleep,
                reraise=True,
            )
            async for try_ in retrying:
                with try_:
                    attempt = try_.retry_state.attempt_number
                    if self._closing:
                        return
                    await self._connect_once(attempt=attempt)
            self._start_heartbeat()  # first success may come from here (keep_trying)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Anything else ends reconnection: say so loudly rather than lose the task.
            log.error("giving up reconnecting after %d attempts: %s", attempt, _reason(exc))
            self._set_state(ConnectionState.GIVEN_UP, attempt=attempt, reason=_reason(exc))

    # -- health ------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        self._tasks.ensure("heartbeat", self._heartbeat)

    async def _heartbeat(self) -> None:
        """Detect a silent dead connection: the socket is open but nothing answers."""
        policy = self.policy
        while not self._closing:
            await asyncio.sleep(policy.heartbeat_interval)
            if self.state not in (ConnectionState.CONNECTED, ConnectionState.LINK_LOST):
                continue
            try:
                await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), policy.heartbeat_timeout)
            except TimeoutError:
                # A late answer behind a backlog of data is a busy link, not a dead one.
                quiet = time.monotonic() - self.reader.last_data
                if self.reader.backlog or quiet < policy.heartbeat_timeout:
                    log.info(
                        "heartbeat answer late behind %d bytes still to decode; link alive",
                        self.reader.backlog,
                    )
                    continue
                log.warning(
                    "heartbeat: no answer and no data for %.1fs; dropping the connection",
                    quiet,
                )
                if self.ib.isConnected():
                    self.ib.disconnect()
            except ConnectionError as exc:
                log.warning(
                    "heartbeat: no answer within %.1fs (%s); dropping the connection",
                    policy.heartbeat_timeout,
                    _reason(exc),
                )
                if self.ib.isConnected():
                    self.ib.disconnect()

    def _on_ib_error(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        if code == CLIENT_ID_IN_USE:
            if self._id_refused is not None and not self._id_refused.done():
                self._id_refused.set_result(code)
        elif code == CONNECTIVITY_LOST:
            self._ib_link_lost = True
            # While connecting, _connect_once reports LINK_LOST once the session is up.
            if self.state not in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
                self._set_state(ConnectionState.LINK_LOST, reason=f"{code}: {message}")
        elif code in (CONNECTIVITY_RESTORED, CONNECTIVITY_RESTORED_DATA_LOST):
            self._ib_link_lost = False
            if self.state is ConnectionState.LINK_LOST:
                self._set_state(ConnectionState.CONNECTED, reason=f"{code}: {message}")
            if code == CONNECTIVITY_RESTORED_DATA_LOST:
                self.marketDataLost.emit()

    # -- state -------------------------------------------------------------------------

    def _set_state(
        self,
        state: ConnectionState,
        *,
        reason: str = "",
        attempt: int = 0,
        next_retry_in: float | None = None,
    ) -> None:
        self.state = state
        status = ConnectionStatusChanged(
            state=state,
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            reason=reason,
            attempt=attempt,
            next_retry_in=next_retry_in,
            accounts=tuple(self.ib.managedAccounts()) if self.ib.isConnected() else (),
            server_version=self.ib.client.serverVersion() if self.ib.isConnected() else 0,
        )
        self.last_status = status
        log.log(
            logging.WARNING
            if state in (ConnectionState.GIVEN_UP, ConnectionState.LINK_LOST)
            else logging.INFO,
            "connection %s",
            status.describe(),
        )
        self.statusChanged.emit(status)


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is TWS / IB Gateway running with the API enabled?)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return text


# -- the seed's module-level API ---------------------------------------------------------

_default: Connection | None = None


async def connect_to_IB(
    clientid: int,
    host: str = "127.0.0.1",
    port: int = 7497,
    *,
    timeout: float = 10.0,
    readonly: bool = False,
    account: str = "",
    policy: ReconnectPolicy | None = None,
    on_status: Callable[[ConnectionStatusChanged], Any] | None = None,
) -> IB:
    """Connect the default connection with ``clientid`` (or the next free one) and return
    its ``IB``. Reconnection is automatic from then on."""
    global _default
    if _default is not None and _default.is_connected:
        return _default.ib
    _default = Connection(
        host, port, clientid, timeout=timeout, readonly=readonly, account=account, policy=policy
    )
    if on_status is not None:
        _default.statusChanged += on_status
    return await _default.connect()


async def disconnect_from_IB() -> None:
    """Close the default connection cleanly; no reconnection follows."""
    global _default
    if _default is not None:
        await _default.disconnect()
        _default = None


def default_connection() -> Connection | None:
    """The connection :func:`connect_to_IB` made, if any."""
    return _default
