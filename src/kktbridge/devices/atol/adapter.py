"""The ATOL register as a `FiscalRegister`: fiscal operations as sequences of ATOL commands.

This file decides what to send and in which mode; commands.py says how bytes look, link.py carries them.
Reconciliation lives here too: before a receipt the adapter notes the last FD number; whenever the outcome of
a fiscal command is unknown (a broken link, a printer error at closing), it asks the register for its last
document and returns that document if it is ours, so a receipt is neither lost nor printed twice.
"""

from __future__ import annotations

import logging

from ...fiscal import (
    CashOperation,
    CashOperationKind,
    Cashier,
    DocumentKind,
    FiscalResult,
    PaymentKind,
    Receipt,
    ReceiptType,
)
from .. import tlv
from ..base import Checkpoint, FiscalRegister, RegisterStatus
from ..errors import DeviceError, LinkError, OutcomeUnknown, device_error
from ..transport import SerialTransport, TcpTransport
from .commands import (
    RECEIPT_TYPE_OF,
    UNVERIFIED,
    CommandRequest,
    DeviceState,
    DeviceType,
    DocumentInfo,
    FnSub,
    Mode,
    RegistrationInfo,
    Reply,
    ShiftState,
    StateCode,
    StateFlags,
)
from .errors import atol_error
from .link import AtolLink, V2Link, V3Link
from .requisites import item_requisites, receipt_requisites

__all__ = ["PROBE_BAUDRATES", "AtolRegister"]

log = logging.getLogger("kktbridge.atol")

PROBE_BAUDRATES = (115200, 57600, 38400, 19200, 9600, 256000, 128000)  # atol4j's list, the default first
_KINDS = {2: DocumentKind.OPEN_SHIFT, 3: DocumentKind.RECEIPT, 5: DocumentKind.CLOSE_SHIFT, 1: DocumentKind.REGISTRATION}
_PRINTER = {"no_paper", "printer_error", "cover_open"}
_SHIFT_CLOSED = UNVERIFIED["ERROR_SHIFT_CLOSED"]


def _fn_reply(raw: bytes) -> bytes:
    """An 0xA4 query's reply (`55 err ...`, no extended byte), checked."""
    if len(raw) < 2 or raw[1]:
        raise atol_error(raw[1] if len(raw) > 1 else 20)
    return raw


def _check(replies: list[bytes]) -> None:
    """The first error among batched replies, raised."""
    for raw in replies:
        reply = Reply.decode(raw)
        if reply.error:
            raise atol_error(reply.error, reply.extended)


def _parse(kind, raw: bytes):
    """A reply structure, or a DeviceError naming the reply that did not fit it."""
    try:
        return kind.decode(raw)
    except (ValueError, IndexError) as exc:
        raise device_error("device_error", device_text=f"malformed {kind.__name__} reply {raw.hex(' ')}: {exc}") \
            from None


class AtolRegister(FiscalRegister):
    kind = "atol"

    def __init__(self, link: AtolLink, *, password: int = 0, mode_password: int = 30,
                 probe: tuple[int, ...] = ()) -> None:
        self.link = link
        self.password = password
        self.mode_password = mode_password
        self.probe = probe  # serial baud rates to try when the configured one does not answer
        self._mode: Mode | None = None
        self._fn_number: str | None = None
        self._registration: RegistrationInfo | None = None
        self._model = ""
        self._last_fd: int | None = None  # the last FD number the register reported to us

    @classmethod
    def tcp(cls, host: str, port: int = 5555, **options) -> "AtolRegister":
        return cls(V3Link(TcpTransport(host, port)), **options)

    @classmethod
    def serial(cls, port: str, baudrate: int | str = 115200, protocol: str = "v3", **options) -> "AtolRegister":
        auto = baudrate == "auto"
        transport = SerialTransport(port, PROBE_BAUDRATES[0] if auto else int(baudrate))
        link = V2Link(transport) if protocol == "v2" else V3Link(transport)
        return cls(link, probe=PROBE_BAUDRATES if auto else (), **options)

    # --- link ------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        self._mode = None
        rates = self.probe or (None,)
        last: DeviceError | None = None
        for rate in rates:
            if rate is not None:
                self.link.transport.baudrate = rate  # type: ignore[attr-defined]
            try:
                await self.link.open()
                kind = _parse(DeviceType, await self.link.execute(CommandRequest.device_type(self.password),
                                                                 timeout=1))
            except (DeviceError, ValueError) as exc:
                last = exc if isinstance(exc, DeviceError) else device_error("link", device_text=str(exc))
                await self.link.close()
                continue
            if kind.error:
                raise atol_error(kind.error)
            self._model = kind.name
            if rate is not None:
                log.info("ATOL answers on %s", self.link.transport.describe())
            return
        assert last is not None
        raise last

    async def close(self) -> None:
        self._mode = None
        self._last_fd = None
        await self.link.close()

    async def _raw(self, body: bytes) -> bytes:
        try:
            return await self.link.execute(body)
        except (LinkError, OutcomeUnknown):
            self._mode = None
            raise

    async def _raw_many(self, bodies: list[bytes]) -> list[bytes]:
        try:
            return await self.link.execute_many(bodies)
        except (LinkError, OutcomeUnknown):
            self._mode = None
            raise

    async def _call_many(self, bodies: list[bytes]) -> None:
        """Run commands in one batch; the first error among their replies is raised (all of them ran)."""
        try:
            _check(await self._raw_many(bodies))
        except DeviceError as exc:
            if exc.device_code == 102:  # the register is not in the mode we thought
                self._mode = None
            raise

    async def _call(self, body: bytes) -> None:
        await self._call_many([body])

    # --- modes -----------------------------------------------------------------------------------------

    async def _enter(self, mode: Mode) -> None:
        if self._mode is None:
            self._mode = Mode(_parse(StateCode, await self._raw(CommandRequest.state_code(self.password))).mode)
        if self._mode is mode:
            return
        if self._mode is not Mode.SELECT:
            await self._call(CommandRequest.leave_mode(self.password))
            self._mode = Mode.SELECT
        await self._call(CommandRequest.enter_mode(mode, self.mode_password, self.password))
        self._mode = mode

    # --- queries ---------------------------------------------------------------------------------------

    async def status(self) -> RegisterStatus:
        bodies = [CommandRequest.device_state(self.password), self._fn_body(FnSub.SHIFT_STATE), self._last_body()]
        if self._fn_number is None:
            bodies += [self._fn_body(FnSub.FN_NUMBER), self._fn_body(FnSub.REGISTRATION)]
        replies = await self._raw_many(bodies)
        state = _parse(DeviceState, replies[0])
        shift = _parse(ShiftState, _fn_reply(replies[1]))
        last = _parse(DocumentInfo, _fn_reply(replies[2]))
        if self._fn_number is None:
            self._fn_number = _fn_reply(replies[3])[2:].decode("ascii").strip()
            self._registration = _parse(RegistrationInfo, _fn_reply(replies[4]))
        registration = self._registration
        assert registration is not None
        states = UNVERIFIED["A4_10_STATES"]
        return RegisterStatus(
            model=self._model or f"ATOL model {state.model}",
            serial=str(state.serial),
            fn_number=self._fn_number,
            reg_number=registration.reg_number,
            inn=registration.inn,
            datetime=state.clock,
            shift_open=bool(state.flags & StateFlags.SHIFT_OPEN),
            shift_number=shift.shift_number,
            shift_expired=shift.state == states["expired"],  # type: ignore[index]
            receipt_open=state.receipt_state != 0,
            paper=bool(state.flags & StateFlags.PAPER),
            cover_open=bool(state.flags & StateFlags.COVER_OPEN),
            last_fd_number=last.fd_number,
        )

    def _fn_body(self, sub: FnSub, params: bytes = b"") -> bytes:
        return CommandRequest.fn(sub, params, self.password)

    def _last_body(self) -> bytes:
        return self._fn_body(FnSub.DOCUMENT, UNVERIFIED["A4_45_LAST"].to_bytes(4, "little"))  # type: ignore[attr-defined]

    async def _last_info(self) -> DocumentInfo:
        return _parse(DocumentInfo, _fn_reply(await self._raw(self._last_body())))

    async def last_document(self) -> FiscalResult | None:
        await self._identity()
        info = await self._last_info()
        return None if info.doc_type == 0 else self._result(info)

    def _document_from(self, raw: bytes, before: int, kind: DocumentKind, total: int | None = None,
                       receipt_type: ReceiptType | None = None) -> FiscalResult | None:
        """The document made since `before` (from an 0xA4 0x45 reply), if it is ours; None if none was made."""
        info = _parse(DocumentInfo, _fn_reply(raw))
        self._last_fd = info.fd_number
        if info.doc_type == 0 or info.fd_number <= before:
            return None
        made = self._result(info)
        if made.fd_number == before + 1 and made.kind is kind and (total is None or made.total == total) and (
                receipt_type is None or made.receipt_type is receipt_type):
            return made
        raise device_error("fn_error", device_text=(
            f"document {made.fd_number} ({made.kind.name}) appeared where document {before + 1} ({kind.name}) "
            "was expected: something else used the register"))

    def _result(self, info: DocumentInfo) -> FiscalResult:
        registration = self._registration
        kind = _KINDS.get(info.doc_type, DocumentKind.RECEIPT)
        receipt_type = RECEIPT_TYPE_OF.get(info.receipt_type) if kind is DocumentKind.RECEIPT else None
        return FiscalResult(
            kind=kind, fd_number=info.fd_number, fiscal_sign=str(info.fiscal_sign), fn_number=self._fn_number or "",
            shift_number=info.shift_number, datetime=info.clock,
            reg_number=registration.reg_number if registration else "",
            receipt_number=info.receipt_number if receipt_type else None,
            total=info.total if receipt_type else None, receipt_type=receipt_type,
        )

    async def _identity(self) -> None:
        """The FN number and registration data, read once per connection."""
        if self._fn_number is None or self._registration is None:
            await self.status()

    # --- shift -----------------------------------------------------------------------------------------

    def _cashier_requisites(self, cashier: Cashier | None) -> list[bytes]:
        if cashier is None or not cashier.name:
            return []
        data = tlv.encode(1021, cashier.name).to_bytes()
        if cashier.inn:
            data += tlv.encode(1203, cashier.inn).to_bytes()
        return [CommandRequest.write_requisite(data, item=False, password=self.password)]

    async def open_shift(self, cashier: Cashier | None = None, *, checkpoint: Checkpoint | None = None) -> FiscalResult:
        return await self._fiscal_step(DocumentKind.OPEN_SHIFT, Mode.REGISTRATION, cashier,
                                       CommandRequest.open_shift(password=self.password), checkpoint)

    async def close_shift(self, cashier: Cashier | None = None, *,
                          checkpoint: Checkpoint | None = None) -> FiscalResult:
        if (await self.status()).receipt_open:
            await self.cancel_receipt()
        result = await self._fiscal_step(DocumentKind.CLOSE_SHIFT, Mode.REPORT_Z, cashier,
                                         CommandRequest.z_report(self.password), checkpoint)
        await self._leave()
        return result

    async def _fiscal_step(self, kind: DocumentKind, mode: Mode, cashier: Cashier | None, command: bytes,
                           checkpoint: Checkpoint | None) -> FiscalResult:
        """One document-making command: note the last FD, checkpoint, run it, read the document it made."""
        await self._identity()
        await self._enter(mode)
        replies = await self._raw_many([self._last_body(), *self._cashier_requisites(cashier)])
        before = _parse(DocumentInfo, _fn_reply(replies[0])).fd_number
        _check(replies[1:])
        if checkpoint is not None:
            await checkpoint(before)
        try:
            done, last = await self._raw_many([command, self._last_body()])
        except OutcomeUnknown as exc:
            made = await self._ask_for(before, kind, exc)
            return made
        reply = Reply.decode(done)
        if reply.error:
            error = atol_error(reply.error, reply.extended)
            if error.code not in _PRINTER:
                raise error
            made = self._document_from(last, before, kind)  # a printer fault after the document was made
            if made is None:
                raise error
            log.warning("ATOL: %s made document %d, then: %s", kind.name, made.fd_number, error.text())
            return made
        made = self._document_from(last, before, kind)
        if made is None:
            raise device_error("fn_error", device_text=f"the register reported success but made no {kind.name}")
        return made

    async def _ask_for(self, before: int, kind: DocumentKind, exc: DeviceError, total: int | None = None,
                       receipt_type: ReceiptType | None = None) -> FiscalResult:
        """After a broken link: the document if the register made it; else the original error."""
        try:
            made = self._document_from(await self._raw(self._last_body()), before, kind, total, receipt_type)
        except (LinkError, OutcomeUnknown):
            raise exc from None  # still no link: the caller's checkpoint keeps `before` to ask again later
        if made is None:
            raise exc
        log.warning("ATOL: document %d was made although the link broke: %s", made.fd_number, exc.text())
        return made

    async def _leave(self) -> None:
        if self._mode not in (None, Mode.SELECT):
            try:
                await self._call(CommandRequest.leave_mode(self.password))
                self._mode = Mode.SELECT
            except DeviceError:
                self._mode = None

    async def x_report(self, cashier: Cashier | None = None) -> None:
        await self._enter(Mode.REPORT_X)
        await self._call_many([*self._cashier_requisites(cashier), CommandRequest.report(1, self.password)])
        await self._leave()

    # --- receipt ---------------------------------------------------------------------------------------

    async def fiscalize(self, receipt: Receipt, *, checkpoint: Checkpoint | None = None) -> FiscalResult:
        """Two round trips: [last FD, open, requisites, lines, non-cash payments], then [close, last FD].

        Whatever fails before the close is repaired by cancelling the receipt: nothing was fiscalized yet. The
        checkpoint (the caller's journal write) runs while the first batch is at the register, with the last
        FD number this adapter saw; the close waits for it, and for a second one if the register says another
        number (someone used it meanwhile).
        """
        await self._identity()
        guess = self._last_fd
        early = checkpoint(guess) if checkpoint is not None and guess is not None else None  # starts writing now
        try:
            before = await self._open_and_fill(receipt)
        finally:
            if early is not None:
                await early
        if checkpoint is not None and before != guess:
            await checkpoint(before)
        payments = list(receipt.payments.by_kind().items()) or [(PaymentKind.CASH, 0)]
        kind, amount = payments[-1]
        try:
            done, last = await self._raw_many([CommandRequest.close_receipt(kind, amount, password=self.password),
                                               self._last_body()])
        except OutcomeUnknown as exc:
            return await self._ask_for(before, DocumentKind.RECEIPT, exc, receipt.total, receipt.type)
        reply = Reply.decode(done)
        made = self._document_from(last, before, DocumentKind.RECEIPT, receipt.total, receipt.type)
        if reply.error:
            error = atol_error(reply.error, reply.extended)
            if made is not None:  # the paper ran out while the fiscalized receipt printed
                log.warning("ATOL: receipt fiscalized as document %d, then: %s", made.fd_number, error.text())
                return made
            await self._cancel_quietly()
            raise error
        if made is None:
            raise device_error("fn_error", device_text="the register closed the receipt but made no document")
        return made

    async def _open_and_fill(self, receipt: Receipt, attempts: int = 3) -> int:
        """Open the receipt and send its lines; return the last FD number before it. Handles a closed shift
        (opens it), a receipt left open (cancels it) and a mode changed behind our back (re-enters)."""
        password = self.password
        batch = [self._last_body(),
                 CommandRequest.open_receipt(receipt.type, electronically=receipt.electronically, password=password)]
        requisites = receipt_requisites(receipt)
        if requisites:
            batch.append(CommandRequest.write_requisite(b"".join(requisites), item=False, password=password))
        for item in receipt.items:
            line, tlvs = item_requisites(item)
            if tlvs:
                batch.append(CommandRequest.write_requisite(b"".join(tlvs), item=True, password=password))
            batch.append(CommandRequest.register_item(line, password))
        payments = list(receipt.payments.by_kind().items()) or [(PaymentKind.CASH, 0)]
        batch += [CommandRequest.payment(kind, amount, password=password) for kind, amount in payments[:-1]]
        for attempt in range(attempts):
            await self._enter(Mode.REGISTRATION)
            try:
                replies = await self._raw_many(batch)
            except OutcomeUnknown:
                await self._cancel_quietly()
                raise
            before = self._last_fd = _parse(DocumentInfo, _fn_reply(replies[0])).fd_number
            opened = Reply.decode(replies[1])
            if opened.error == _SHIFT_CLOSED and attempt + 1 < attempts:
                await self.open_shift(receipt.cashier)
                continue
            if opened.error == 155 and attempt + 1 < attempts:
                log.warning("ATOL: a receipt was left open (not fiscalized); cancelling it")
                await self._cancel_quietly()
                continue
            if opened.error == 102 and attempt + 1 < attempts:
                self._mode = None
                continue
            if opened.error == 136:
                raise device_error("shift_expired", device_code=136, device_text="Смена превысила 24 часа")
            if opened.error:
                raise atol_error(opened.error, opened.extended)
            try:
                _check(replies[2:])
            except DeviceError:
                await self._cancel_quietly()
                raise
            return before
        raise device_error("device_error", device_text="could not open a receipt")

    async def _cancel_quietly(self) -> None:
        try:
            await self.cancel_receipt()
        except DeviceError as exc:
            log.warning("ATOL: could not cancel the failed receipt: %s", exc.text())

    async def cancel_receipt(self) -> bool:
        state = _parse(DeviceState, await self._raw(CommandRequest.device_state(self.password)))
        if state.receipt_state == 0:
            return False
        self._mode = Mode(state.mode)
        await self._enter(Mode.REGISTRATION)
        await self._call(CommandRequest.cancel_receipt(self.password))
        return True

    # --- other -----------------------------------------------------------------------------------------

    async def cash_operation(self, operation: CashOperation) -> None:
        await self._enter(Mode.REGISTRATION)
        await self._call_many([*self._cashier_requisites(operation.cashier),
                               CommandRequest.cash(operation.kind is CashOperationKind.CASH_IN, operation.amount,
                                                   password=self.password)])

    async def open_drawer(self) -> None:
        await self._call(CommandRequest.open_drawer(self.password))

    async def print_text(self, lines: list[str]) -> None:
        for line in lines:
            await self._call(CommandRequest.print_string(line, self.password))

    async def print_qr(self, data: str) -> None:
        await self._call(CommandRequest.qr_code(data, password=self.password))

