"""An emulated ATOL register on the wire: protocol v3 on TCP or a pseudo-terminal, v2 on a pseudo-terminal.

This file is the register's link layer: it frames replies (transport_v3 / transport_v2, the codecs the
driver uses), keeps the v3 task buffer, plays the link faults (drop the link after N bytes, print latency)
and power loss (restart the device from its state file). What a command does is AtolDevice's business.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...devices.atol import transport_v2 as v2
from ...devices.atol import transport_v3 as v3
from ..faults import Faults
from ..fncore import FiscalCore, Registration
from ..paper import PaperTape
from .device import AtolDevice, PowerLoss

__all__ = ["AtolEmulator"]

log = logging.getLogger("kktbridge.emulator.atol")


@dataclass
class _Task:
    status: v3.TaskStatus
    payload: bytes = b""


@dataclass(eq=False)
class _Peer:
    """One connection (a TCP client or the pty): its byte sink and the frames it may ask to be resent.

    Replies to the frames of one incoming chunk are written together (`held`), as a register answering a
    batch of tasks at once would, instead of one TCP segment per frame.
    """

    sink: Callable[[bytes], None]
    close: Callable[[], None]
    sent: dict[int, bytes] = field(default_factory=dict)
    held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self.held is not None:
            self.held.append(data)
        else:
            self.sink(data)

    def flush(self) -> None:
        held, self.held = self.held, None
        if held:
            self.sink(b"".join(held))


class AtolEmulator:
    """The emulator as a process would run it: a device, its task buffer, and the links it serves."""

    def __init__(self, *, state_path: Path | str | None = None, journal_path: Path | str | None = None,
                 paper_path: Path | str | None = None, registration: Registration | None = None,
                 faults: Faults | None = None, password: int = 0, fsync: bool = True,
                 exit_on_power_loss: bool = False) -> None:
        self.faults = faults or Faults()
        self._core_args = dict(registration=registration, state_path=state_path, journal_path=journal_path,
                               fsync=fsync)
        self.paper = PaperTape(paper_path)
        self.password = password
        self.exit_on_power_loss = exit_on_power_loss
        self.device = self._new_device()
        self._tasks: dict[int, _Task] = {}
        self._lock = asyncio.Lock()
        self._peers: set[_Peer] = set()
        self._servers: list[asyncio.Server] = []
        self._clients: set[asyncio.Task] = set()
        self._queue: asyncio.Queue[tuple[_Task, bytes]] = asyncio.Queue()
        self._busy = False
        self._worker: asyncio.Task | None = None
        self._pty: tuple[int, int] | None = None
        self._pty_task: asyncio.Task | None = None
        self.bytes_sent = 0
        self.restarts = 0
        self.printing: str | None = None  # the command code (hex) whose `print_latency` runs now, for the status

    def _new_device(self) -> AtolDevice:
        return AtolDevice(FiscalCore(**self._core_args), faults=self.faults, paper=self.paper,  # type: ignore[arg-type]
                          password=self.password)

    @property
    def core(self) -> FiscalCore:
        return self.device.core

    # --- serving ---------------------------------------------------------------------------------------

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 5555) -> tuple[str, int]:
        """Listen for v3 over TCP (the way ATOL registers are reached on port 5555); returns the bound address."""

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = _Peer(sink=writer.write, close=writer.close)
            self._peers.add(peer)
            me = asyncio.current_task()
            if me is not None:
                self._clients.add(me)
            decoder = v3.FrameDecoder()
            try:
                while data := await reader.read(4096):
                    peer.held = []
                    for event in decoder.feed(data):
                        await self._v3_event(peer, event)
                    peer.flush()
            except (ConnectionError, OSError):
                pass
            finally:
                self._peers.discard(peer)
                self._clients.discard(me)  # type: ignore[arg-type]
                writer.close()

        server = await asyncio.start_server(client, host, port)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        return bound[0], bound[1]

    def open_pty(self, protocol: str = "v3") -> str:
        """Create a pseudo-terminal pair, serve it, and return the path a driver opens as its serial port (POSIX)."""
        import tty  # POSIX only; imported here so the emulator still runs on TCP on Windows

        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes pass as they are
        os.set_blocking(master, False)
        self._pty = (master, slave)
        path = os.ttyname(slave)
        loop = asyncio.get_running_loop()

        def write(data: bytes) -> None:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(master, view):]
                except BlockingIOError:
                    time.sleep(0.0005)

        peer = _Peer(sink=write, close=lambda: None)
        self._peers.add(peer)
        if protocol == "v2":
            session = v2.DeviceSession()
            timer: list[asyncio.TimerHandle | None] = [None]

            def outputs(out: list) -> None:
                for item in out:
                    if isinstance(item, v2.Send):
                        self._send(peer, item.data)
                    elif isinstance(item, v2.StartTimer):
                        if timer[0]:
                            timer[0].cancel()
                        timer[0] = loop.call_later(item.ms / 1000, lambda: outputs(session.timeout()))
                    elif isinstance(item, v2.StopTimer) and timer[0]:
                        timer[0].cancel()
                        timer[0] = None
                    elif isinstance(item, v2.RequestReceived):
                        loop.create_task(self._v2_request(session, item.data, outputs))

            def readable_v2() -> None:
                try:
                    data = os.read(master, 4096)
                except (BlockingIOError, OSError):
                    return
                outputs(session.receive_data(data))

            loop.add_reader(master, readable_v2)
        else:
            decoder = v3.FrameDecoder()
            chunks: asyncio.Queue[bytes] = asyncio.Queue()

            async def serve_v3() -> None:  # one chunk after another, in order
                while True:
                    data = await chunks.get()
                    peer.held = []
                    for event in decoder.feed(data):
                        await self._v3_event(peer, event)
                    peer.flush()

            def readable_v3() -> None:
                try:
                    chunks.put_nowait(os.read(master, 4096))
                except (BlockingIOError, OSError):
                    return

            self._pty_task = loop.create_task(serve_v3())
            loop.add_reader(master, readable_v3)
        return path

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for peer in list(self._peers):
            peer.close()
        if self._clients:  # let each connection see its end rather than be cancelled mid-read
            await asyncio.wait(list(self._clients), timeout=2)
        for server in self._servers:
            await server.wait_closed()
        if self._pty_task is not None:
            self._pty_task.cancel()
            self._pty_task = None
        if self._pty:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._pty[0])
            os.close(self._pty[0])
            os.close(self._pty[1])
            self._pty = None
        if self._worker is not None:
            self._worker.cancel()

    # --- v3 task buffer --------------------------------------------------------------------------------

    async def _v3_event(self, peer: _Peer, event: v3.Frame | v3.CorruptFrame) -> None:
        if isinstance(event, v3.CorruptFrame):
            self._send(peer, v3.retransmit_request(event.packet_id))
            return
        if event.is_retransmit_request:
            frame = peer.sent.get(event.packet_id)
            if frame is not None:
                self._send(peer, frame)
            return
        try:
            request = v3.parse_request(event.data)
        except v3.V3Error:
            self._reply(peer, event.packet_id, v3.Reply(v3.TaskStatus.ILLEGAL_VALUE))
            return
        reply = await self._v3_request(request)
        if reply is not None:
            self._reply(peer, event.packet_id, reply)

    async def _v3_request(self, request: v3.Request) -> v3.Reply | None:
        if isinstance(request, v3.Abort):
            if self._worker is not None:
                self._worker.cancel()
            self._queue = asyncio.Queue()
            self._busy = False
            self._tasks.clear()
            return v3.Reply(v3.TaskStatus.RESULT)
        if isinstance(request, v3.Ack):
            self._tasks.pop(request.task_id, None)
            return v3.Reply(v3.TaskStatus.RESULT)
        if isinstance(request, v3.AckAdd):  # acknowledges "the previous result": every finished task
            for done in [tid for tid, task in self._tasks.items() if task.status.is_final]:
                del self._tasks[done]
        if isinstance(request, v3.Req):
            task = self._tasks.get(request.task_id)
            if task is None:
                return v3.Reply(v3.TaskStatus.NOT_FOUND)
            return v3.Reply(task.status, task.payload)
        # Add / AckAdd: a new task; the buffer runs tasks strictly one after another, in the order added
        task_id, command = request.task_id, request.command
        if task_id in self._tasks:
            return v3.Reply(v3.TaskStatus.ALREADY_EXISTS)
        task = _Task(v3.TaskStatus.PENDING)
        self._tasks[task_id] = task
        slow = self.faults.print_latency > 0 and self.device.is_slow(command)
        if self._queue.empty() and not self._busy and not slow:
            await self._run(task, command)  # nothing ahead of it: answer with the result at once
            return v3.Reply(task.status, task.payload) if task_id in self._tasks else None
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())
        self._queue.put_nowait((task, command))
        return v3.Reply(v3.TaskStatus.PENDING)

    async def _work(self) -> None:
        while not self._queue.empty():
            task, command = self._queue.get_nowait()
            self._busy = True
            task.status = v3.TaskStatus.IN_PROGRESS
            try:
                if self.faults.print_latency > 0 and self.device.is_slow(command):
                    await self._print_slowly(command)
                await self._run(task, command)
            finally:
                self._busy = False

    async def _print_slowly(self, command: bytes) -> None:
        """The `print_latency` of a document-printing command, shown as `printing` in the status meanwhile."""
        self.printing = f"{command[2]:02x}"
        try:
            await asyncio.sleep(self.faults.print_latency)
        finally:
            self.printing = None

    async def _handle(self, command: bytes) -> bytes | None:
        """Run one command on the device; None when the power-loss switch fired (nothing to answer)."""
        async with self._lock:
            try:
                return self.device.handle(command)
            except PowerLoss as exc:
                self._power_loss(str(exc))
                return None

    async def _run(self, task: _Task, command: bytes) -> None:
        payload = await self._handle(command)
        if payload is None:
            return
        error = len(payload) > 1 and payload[0] == 0x55 and payload[1] != 0
        task.payload = payload
        task.status = v3.TaskStatus.ERROR if error else v3.TaskStatus.RESULT

    def _reply(self, peer: _Peer, packet_id: int, reply: v3.Reply) -> None:
        frame = v3.encode_frame(packet_id, reply.to_bytes())
        peer.sent[packet_id] = frame
        self._send(peer, frame)

    # --- v2 --------------------------------------------------------------------------------------------

    async def _v2_request(self, session: v2.DeviceSession, command: bytes, outputs: Callable) -> None:
        if self.faults.print_latency > 0 and self.device.is_slow(command):
            await self._print_slowly(command)
        payload = await self._handle(command)
        if payload is not None:
            outputs(session.reply(payload))

    # --- faults ----------------------------------------------------------------------------------------

    def _send(self, peer: _Peer, data: bytes) -> None:
        limit = self.faults.drop_after_bytes
        if limit is not None and len(data) >= limit:
            peer.write(data[:limit])
            peer.flush()
            self.bytes_sent += limit
            self.faults.drop_after_bytes = None
            log.info("fault: dropping the link after %d more bytes", limit)
            peer.close()
            return
        if limit is not None:
            self.faults.drop_after_bytes = limit - len(data)
        peer.write(data)
        self.bytes_sent += len(data)

    def _power_loss(self, where: str) -> None:
        log.warning("fault: power loss %s", where)
        if self.exit_on_power_loss:
            os._exit(3)
        self.faults.power_loss_at = None
        for peer in list(self._peers):
            peer.close()
        self._tasks.clear()
        self._queue = asyncio.Queue()
        self.device = self._new_device()  # a restart: only what the state file kept survives
        self.restarts += 1

    def status(self) -> dict:
        core = self.core
        return {"shift_open": core.shift_open, "shift_number": core.shift_number, "last_fd": core.last_fd_number,
                "receipt_open": core.receipt is not None, "cash": core.cash, "mode": int(self.device.mode),
                "faults": self.faults.to_dict(), "restarts": self.restarts, "printing": self.printing}
