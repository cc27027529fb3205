"""One ATOL command over a transport, in protocol v3 (task buffer) or v2 (ENQ/ACK): body in, reply out.

The link owns the transport and the codecs of transport_v3 / transport_v2; it knows nothing of what the
command means. Its promise about failures is what the adapter relies on:
- LinkError: the command certainly did not reach the register (nothing changed);
- OutcomeUnknown: it may have run (sent, then the link broke and the result could not be fetched);
- otherwise the register's reply bytes, exactly once, however many retransmissions it took.
v3 keeps the task in the register's buffer across a broken TCP connection, so after a reconnect the link asks
for the result of the same task id (C3) instead of adding the command again.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time

from ..errors import LinkError, OutcomeUnknown, device_error
from ..transport import Transport
from . import transport_v2 as v2
from . import transport_v3 as v3

__all__ = ["AtolLink", "V2Link", "V3Link"]

log = logging.getLogger("kktbridge.atol")

REPLY_WAIT = 1.0  # seconds for a v3 frame answering ours
POLL_INTERVAL = 0.02  # seconds between C3 requests while a task runs


def _outcome_unknown(detail: str) -> OutcomeUnknown:
    error = device_error("outcome_unknown", device_text=detail)
    assert isinstance(error, OutcomeUnknown)
    return error


class AtolLink(abc.ABC):
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def open(self) -> None:
        await self.transport.open()

    async def close(self) -> None:
        await self.transport.close()

    @abc.abstractmethod
    async def execute(self, body: bytes, *, timeout: float | None = None) -> bytes:
        """Run one command (password + code + params) and return the register's reply bytes."""

    @abc.abstractmethod
    async def execute_many(self, bodies: list[bytes], *, timeout: float | None = None) -> list[bytes]:
        """Run commands in order; every one runs whatever the others' outcomes."""


class _NoAnswer(Exception):
    """The link is up but the register did not answer some of our frames; `answers` holds those it did."""

    def __init__(self, answers: list[v3.Reply]) -> None:
        super().__init__("no answer")
        self.answers = answers


class V3Link(AtolLink):
    """v3: commands go into the register's task buffer; several may be added at once (`execute_many`).

    A finished task stays in the buffer until acknowledged; the link acknowledges with the next ADD (C5,
    ACK+ADD, UNVERIFIED: taken to acknowledge every finished task) instead of a round trip of its own.
    """

    def __init__(self, transport: Transport, *, reconnects: int = 2) -> None:
        super().__init__(transport)
        self._packet_ids = v3.IdCounter()
        self._task_ids = v3.IdCounter()
        self._decoder = v3.FrameDecoder()
        self._unacked = False
        self.reconnects = reconnects

    async def open(self) -> None:
        await self.transport.open()
        self._decoder.reset()
        self._unacked = False
        try:
            await self._frames([v3.Abort().to_bytes()], time.monotonic() + 3)  # start from an empty task buffer
        except _NoAnswer:
            await self.transport.close()
            raise device_error("link", device_text=f"no answer from {self.transport.describe()}") from None

    async def execute(self, body: bytes, *, timeout: float | None = None) -> bytes:
        return (await self.execute_many([body], timeout=timeout))[0]

    async def execute_many(self, bodies: list[bytes], *, timeout: float | None = None) -> list[bytes]:
        """Add the commands to the buffer in one write, in order, and return their replies in order.

        The register runs them one after another whatever their outcomes, so a caller batches only
        commands whose failure it repairs afterwards (the lines of a receipt, which it cancels on failure).
        """
        if not self.transport.is_open:
            await self.open()
        limit = (timeout if timeout is not None else max(v2.t5_for_request(b) for b in bodies) / 1000) + 5
        deadline = time.monotonic() + limit
        tasks = [next(self._task_ids) for _ in bodies]
        adds = []
        for index, (task_id, body) in enumerate(zip(tasks, bodies)):
            kind = v3.AckAdd if index == 0 and self._unacked else v3.Add
            adds.append(kind(task_id, body, v3.AddFlags.NEED_RESULT).to_bytes())
        try:
            answers = await self._frames(adds, deadline)
        except _NoAnswer as exc:
            answers = exc.answers
        except LinkError:
            answers = []
        replies: list[v3.Reply] = []
        for index, task_id in enumerate(tasks):
            reply = answers[index] if index < len(answers) else None
            if reply is None or reply.status is v3.TaskStatus.ALREADY_EXISTS:
                reply = await self._ask(task_id, deadline)  # lost answer: ask, never add twice
                if reply.status is v3.TaskStatus.NOT_FOUND and len(bodies) == 1:  # it never arrived: add it again
                    reply = await self._readd(task_id, bodies[0], deadline)
                elif reply.status is v3.TaskStatus.NOT_FOUND:  # re-adding one of a batch would change the order
                    raise _outcome_unknown("a batched command was lost on the way to the register")
            replies.append(await self._until_final(task_id, reply, deadline, limit))
        self._unacked = True
        return [reply.payload for reply in replies]

    async def _readd(self, task_id: int, body: bytes, deadline: float) -> v3.Reply:
        try:
            return (await self._frames([v3.Add(task_id, body).to_bytes()], deadline))[0]
        except (LinkError, _NoAnswer):
            return await self._recover(task_id, deadline)

    async def _until_final(self, task_id: int, reply: v3.Reply, deadline: float, limit: float) -> v3.Reply:
        while True:
            if reply.status in (v3.TaskStatus.RESULT, v3.TaskStatus.ERROR):
                return reply
            if reply.status is v3.TaskStatus.OVERFLOW:
                raise device_error("busy", device_code="B1", device_text="task buffer overflow")
            if reply.status.is_buffer_error or reply.status is v3.TaskStatus.STOPPED:
                raise _outcome_unknown(f"the task buffer answered {reply.status.name}")
            if time.monotonic() > deadline:
                raise _outcome_unknown(f"no result within {limit:.0f} s")
            await asyncio.sleep(POLL_INTERVAL)
            reply = await self._ask(task_id, deadline)

    async def _ask(self, task_id: int, deadline: float) -> v3.Reply:
        try:
            return (await self._frames([v3.Req(task_id).to_bytes()], deadline))[0]
        except (LinkError, _NoAnswer):
            return await self._recover(task_id, deadline)

    async def _recover(self, task_id: int, deadline: float) -> v3.Reply:
        """Reconnect and ask for the task; a register that forgot it may or may not have run it."""
        for attempt in range(self.reconnects):
            try:
                await self.transport.open()
                self._decoder.reset()
                reply = (await self._frames([v3.Req(task_id).to_bytes()], deadline))[0]
            except (LinkError, _NoAnswer) as exc:
                log.warning("ATOL %s: reconnect %d failed: %s", self.transport.describe(), attempt + 1, exc)
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if reply.status is v3.TaskStatus.NOT_FOUND:
                raise _outcome_unknown("the register no longer knows the task (it restarted?)")
            return reply
        raise _outcome_unknown(f"lost the link to {self.transport.describe()} during the command")

    async def _frames(self, messages: list[bytes], deadline: float) -> list[v3.Reply]:
        """Send frames in one write; return the register's answers to them, in order.

        Corrupt frames are answered with a retransmit request, a retransmit request from the register with
        the frame asked for. Silence raises _NoAnswer(message, answers so far).
        """
        sent: dict[int, bytes] = {}
        order: list[int] = []
        for message in messages:
            packet_id = next(self._packet_ids)
            sent[packet_id] = v3.encode_frame(packet_id, message)
            order.append(packet_id)
        await self.transport.write(b"".join(sent.values()))
        answers: dict[int, v3.Reply] = {}
        wait_until = min(deadline, time.monotonic() + REPLY_WAIT)
        while len(answers) < len(order):
            remaining = wait_until - time.monotonic()
            if remaining <= 0:
                got = []
                for packet_id in order:
                    if packet_id not in answers:
                        break
                    got.append(answers[packet_id])
                raise _NoAnswer(got)
            chunk = await self.transport.read(remaining)
            for event in self._decoder.feed(chunk):
                if isinstance(event, v3.CorruptFrame):
                    await self.transport.write(v3.retransmit_request(event.packet_id))
                elif event.is_retransmit_request:
                    if event.packet_id in sent:
                        await self.transport.write(sent[event.packet_id])
                elif event.is_async or event.packet_id not in sent:
                    continue  # an async result or a stale answer: not ours
                else:
                    try:
                        answers[event.packet_id] = v3.parse_reply(event.data)
                    except v3.V3Error as exc:
                        log.warning("ATOL: malformed reply %s: %s", event.data.hex(" "), exc)
                        await self.transport.write(v3.retransmit_request(event.packet_id))
        return [answers[packet_id] for packet_id in order]


class V2Link(AtolLink):
    """Protocol v2 over a serial line: each command is one ENQ/ACK exchange driven by HostExchange."""

    async def execute_many(self, bodies: list[bytes], *, timeout: float | None = None) -> list[bytes]:
        return [await self.execute(body, timeout=timeout) for body in bodies]

    async def execute(self, body: bytes, *, timeout: float | None = None) -> bytes:
        if not self.transport.is_open:
            await self.open()
        exchange = v2.HostExchange(body)
        timer: float | None = None
        sent_frame = False
        outputs = exchange.start()
        while True:
            for output in outputs:
                if isinstance(output, v2.Send):
                    if output.data[:1] == bytes((v2.ControlByte.STX,)):
                        sent_frame = True
                    await self.transport.write(output.data)
                elif isinstance(output, v2.StartTimer):
                    timer = time.monotonic() + output.ms / 1000
                elif isinstance(output, v2.StopTimer):
                    timer = None
                elif isinstance(output, v2.ExchangeDone):
                    return output.reply
                elif isinstance(output, v2.ExchangeFailed):
                    detail = f"v2 exchange failed: {output.failure.name}"
                    if sent_frame:
                        raise _outcome_unknown(detail)
                    raise device_error("link", device_text=detail)
            wait = 0.5 if timer is None else max(0.0, timer - time.monotonic())
            try:
                chunk = await self.transport.read(wait)
            except LinkError:
                if sent_frame:
                    raise _outcome_unknown(f"{self.transport.describe()} went away during the command") from None
                raise
            if chunk:
                outputs = exchange.receive_data(chunk)
            elif timer is not None and time.monotonic() >= timer:
                timer = None
                outputs = exchange.timeout()
            else:
                outputs = []
