"""The ATOL register as a `FiscalRegister`: fiscal operations as sequences of ATOL commands.

This file decides what to send and in which mode; commands.py says how bytes look, link.py carries them.
Before a document-making command the adapter hands the caller its checkpoint (the last FD number); whenever the
outcome of such a command is unknown (a broken link, a printer fault while closing) it raises OutcomeUnknown,
and the caller reads the documents since the checkpoint back (`documents_since`, 0xA4 0x45 and 0x46) to find
what was made by its content. The adapter never decides by position what a document is. A register whose FN
archive cannot be read back by number (found once per connection) also hands its shift counters (0x91) with a
receipt's checkpoint, for the caller to tell from them instead.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from ...fiscal import (
    CashOperation,
    CashOperationKind,
    Cashier,
    DocumentKind,
    DocumentLine,
    Expected,
    FiscalResult,
    FnDocument,
    FieldError,
    FormatError,
    PaymentKind,
    Quantity,
    Receipt,
    ShiftCounters,
    TaxationSystem,
    ValidationFailed,
)
from .. import tlv
from ..base import Checkpoint, FiscalRegister, RegisterStatus
from ..errors import DeviceError, LinkError, OutcomeUnknown, device_error, document_despite_fault
from ..transport import SerialTransport, TcpTransport
from ...fiscal import BridgeError
from .commands import (
    FnValidity,
    PAYMENT_TYPES,
    RECEIPT_TYPE_OF,
    RECEIPT_TYPES,
    UNVERIFIED,
    CashInDrawer,
    CommandRequest,
    DeviceState,
    DeviceType,
    DocumentChunk,
    DocumentContent,
    DocumentInfo,
    FnSub,
    Mode,
    RegisterValue,
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


def _lines(content: DocumentContent) -> tuple[DocumentLine, ...]:
    return tuple(DocumentLine(price, Quantity.parse(quantity), amount, name)
                 for name, price, quantity, amount in content.lines)


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
        self._fn_valid_until: date | None = None
        self._model = ""
        self._last_fd: int | None = None  # the last FD number the register reported to us
        self._shift_opened: tuple[int, datetime] | None = None  # (shift number, when its opening was made)
        self._reads_documents: bool | None = None  # can its FN archive be read by number (None: not asked yet)

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
        self._reads_documents = None
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
        bodies = [CommandRequest.device_state(self.password), self._fn_body(FnSub.SHIFT_STATE), self._last_body(),
                  CommandRequest.cash_in_drawer(self.password)]
        if self._fn_number is None:
            bodies += [self._fn_body(FnSub.FN_NUMBER), self._fn_body(FnSub.REGISTRATION),
                       self._fn_body(FnSub.FN_VALIDITY)]
        replies = await self._raw_many(bodies)
        state = _parse(DeviceState, replies[0])
        shift = _parse(ShiftState, _fn_reply(replies[1]))
        last = _parse(DocumentInfo, _fn_reply(replies[2]))
        cash = _parse(CashInDrawer, replies[3]).cash
        if self._fn_number is None:
            self._fn_number = _fn_reply(replies[4])[2:].decode("ascii").strip()
            self._registration = _parse(RegistrationInfo, _fn_reply(replies[5]))
            try:  # a register that does not answer it still works: the date is then unknown
                self._fn_valid_until = _parse(FnValidity, _fn_reply(replies[6])).valid_until
            except BridgeError:
                self._fn_valid_until = None
        registration = self._registration
        assert registration is not None
        states = UNVERIFIED["A4_10_STATES"]
        shift_open = bool(state.flags & StateFlags.SHIFT_OPEN)
        opened_at = await self._shift_opened_at(shift, last.fd_number) if shift_open else None
        return RegisterStatus(
            model=self._model or f"ATOL model {state.model}",
            serial=str(state.serial),
            fn_number=self._fn_number,
            reg_number=registration.reg_number,
            inn=registration.inn,
            datetime=state.clock,
            shift_open=shift_open,
            shift_number=shift.shift_number,
            shift_opened_at=opened_at,
            shift_expired=shift.state == states["expired"],  # type: ignore[index]
            receipt_open=state.receipt_state != 0,
            paper=bool(state.flags & StateFlags.PAPER),
            cover_open=bool(state.flags & StateFlags.COVER_OPEN),
            last_fd_number=last.fd_number,
            cash=cash,
            taxations=tuple(system for system in TaxationSystem if registration.taxation_mask & system.mask),
            fn_valid_until=self._fn_valid_until,
        )

    async def _shift_opened_at(self, shift: ShiftState, last_fd: int, reach: int = 16) -> datetime | None:
        """When the open shift was opened: the date of its opening document, found near the FD number the shift's
        receipt count points at (read once per shift and connection)."""
        if self._shift_opened is not None and self._shift_opened[0] == shift.shift_number:
            return self._shift_opened[1]
        if self._reads_documents is False:
            return None  # its archive gives nothing back
        guess = last_fd - shift.receipt_number
        for number in sorted(range(max(1, guess - reach), min(last_fd, guess + reach) + 1),
                             key=lambda n: abs(n - guess)):
            raw = await self._raw(CommandRequest.document(number, self.password))
            if Reply.decode(raw).error:
                continue
            info = _parse(DocumentInfo, _fn_reply(raw))
            if _KINDS.get(info.doc_type) is DocumentKind.OPEN_SHIFT and info.shift_number == shift.shift_number:
                self._shift_opened = (shift.shift_number, info.clock)
                return info.clock
        return None

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

    def _made_since(self, raw: bytes, before: int) -> FiscalResult | None:
        """The last document (from an 0xA4 0x45 reply read right after the command that made it) if it is newer
        than `before`; None if the register made none."""
        info = _parse(DocumentInfo, _fn_reply(raw))
        self._last_fd = info.fd_number
        if info.doc_type == 0 or info.fd_number <= before:
            return None
        return self._result(info)

    async def documents_since(self, fd_number: int) -> list[FnDocument]:
        """Each document after `fd_number`: its header (0xA4 0x45 n) and its content (0xA4 0x46 n, in chunks)."""
        await self._identity()
        last = (await self._last_info()).fd_number
        documents = []
        for number in range(fd_number + 1, last + 1):
            header, first = await self._raw_many([CommandRequest.document(number, self.password),
                                                  CommandRequest.document_data(number, 0, self.password)])
            if Reply.decode(header).error:
                continue  # a document the FN cannot give back: missing from the list, as the interface says
            made = self._result(_parse(DocumentInfo, _fn_reply(header)))
            content = await self._content(number, first)
            documents.append(FnDocument(made, content.payments if content else None,
                                        _lines(content) if content else None))
        return documents

    async def _content(self, number: int, first: bytes) -> DocumentContent | None:
        if Reply.decode(first).error:
            return None
        chunk = _parse(DocumentChunk, _fn_reply(first))
        data = chunk.data
        while len(data) < chunk.length and chunk.data:
            chunk = _parse(DocumentChunk, _fn_reply(await self._raw(
                CommandRequest.document_data(number, len(data), self.password))))
            data += chunk.data
        try:
            return DocumentContent.decode(data[:chunk.length])
        except (FormatError, KeyError, IndexError, ValueError) as exc:
            log.warning("ATOL: the content of document %d is unreadable (%s); comparing its header only", number, exc)
            return None

    async def drawer_cash(self) -> int:
        return _parse(CashInDrawer, await self._raw(CommandRequest.cash_in_drawer(self.password))).cash

    async def counters(self) -> ShiftCounters:
        """The shift counters of UNVERIFIED["91_*"], in one batch: the shift, then receipts and payments by type."""
        types = list(RECEIPT_TYPES.items())
        pairs = [(t, code, k, kind_code) for t, code in types for k, kind_code in PAYMENT_TYPES.items()]
        read = CommandRequest.read_register
        count: int = UNVERIFIED["91_RECEIPTS"]  # type: ignore[assignment]
        paid: int = UNVERIFIED["91_PAYMENTS"]  # type: ignore[assignment]
        bodies = [CommandRequest.device_state(self.password), self._fn_body(FnSub.SHIFT_STATE)]
        bodies += [read(count, code, 0, self.password) for _, code in types]
        bodies += [read(paid, code, kind_code, self.password) for _, code, _, kind_code in pairs]
        replies = await self._raw_many(bodies)
        state = _parse(DeviceState, replies[0])
        shift = _parse(ShiftState, _fn_reply(replies[1]))
        values = [_parse(RegisterValue, _fn_reply(raw)).value for raw in replies[2:]]
        receipts = {t: values[i] for i, (t, _) in enumerate(types)}
        payments = {(t, k): values[len(types) + i] for i, (t, _, k, _) in enumerate(pairs)}
        return ShiftCounters.of(shift.shift_number, bool(state.flags & StateFlags.SHIFT_OPEN), receipts, payments)

    async def _cannot_read_documents(self) -> bool:
        """Asked once per connection: the last document, by its number. A register that cannot give it back hands
        its shift counters with each receipt's checkpoint."""
        if self._reads_documents is None:
            last = (await self._last_info()).fd_number
            if last == 0:
                return True  # nothing to read yet (a real FN holds its registration): the counters, to be safe
            raw = await self._raw(CommandRequest.document(last, self.password))
            self._reads_documents = not Reply.decode(raw).error
            if not self._reads_documents:
                log.warning("ATOL: the FN's documents cannot be read back by number (FD %d answers error %d); the "
                            "shift counters are kept with each receipt's checkpoint instead", last,
                            Reply.decode(raw).error)
        return not self._reads_documents

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
        done, last = await self._raw_many([command, self._last_body()])
        return self._closing_answer(done, last, before, Expected(kind))

    def _closing_answer(self, done: bytes, last: bytes, before: int, expected: Expected) -> FiscalResult:
        """The document a closing command made, from its reply and the last-document read batched right after it.
        A printer fault after the document was made (paper out while it printed) still returns the document, if it
        is the expected one; anything else there is left to be identified by content (OutcomeUnknown)."""
        reply = Reply.decode(done)
        made = self._made_since(last, before)
        if reply.error:
            return document_despite_fault(atol_error(reply.error, reply.extended), made, expected)
        if made is None:
            raise device_error("fn_error", device_text=f"the register reported success but made no "
                                                       f"{expected.kind.name.lower()}")
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
        lines, close = self._receipt_commands(receipt)
        await self._identity()
        by_counters = checkpoint is not None and await self._cannot_read_documents()
        guess = self._last_fd
        early = checkpoint(guess) if checkpoint is not None and guess is not None and not by_counters else None
        try:
            before = await self._open_and_fill(receipt, lines)
        finally:
            if early is not None:
                await early  # the write started before the first batch went out
        if by_counters:  # read in the shift the receipt opened in, with the receipt open: they change at its close
            await checkpoint(before, await self.counters())  # type: ignore[misc]
        elif checkpoint is not None and before != guess:
            await checkpoint(before)
        try:
            done, last = await self._raw_many([close, self._last_body()])
            return self._closing_answer(done, last, before, Expected.of_receipt(receipt))
        except OutcomeUnknown:
            raise
        except DeviceError:
            await self._cancel_quietly()
            raise

    def validate(self, receipt: Receipt) -> None:
        try:
            self._receipt_commands(receipt)
        except DeviceError as exc:
            raise ValidationFailed([FieldError("items", "bad_value", exc.ru, exc.en)]) from None

    def _receipt_commands(self, receipt: Receipt) -> tuple[list[bytes], bytes]:
        """Every command of a receipt ([open, requisites, lines, non-cash payments], close), built before the first
        is sent: a value the register's fields cannot hold (a sum beyond its BCD width) is refused here, as a
        device error, while no receipt is open on it yet."""
        password = self.password
        try:
            batch = [CommandRequest.open_receipt(receipt.type, electronically=receipt.electronically,
                                                 password=password)]
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
            kind, amount = payments[-1]
            return batch, CommandRequest.close_receipt(kind, amount, password=password)
        except FormatError as exc:
            raise device_error("bad_value", device_text=exc.en, ru=f"значение не помещается в команду ККТ АТОЛ: "
                               f"{exc.ru}", en=f"a value does not fit an ATOL register's command: {exc.en}") from None

    async def _open_and_fill(self, receipt: Receipt, lines: list[bytes], attempts: int = 3) -> int:
        """Open the receipt and send its lines; return the last FD number before it. Handles a closed shift
        (opens it), a receipt left open (cancels it) and a mode changed behind our back (re-enters)."""
        batch = [self._last_body(), *lines]
        for attempt in range(attempts):
            await self._enter(Mode.REGISTRATION)
            try:
                replies = await self._raw_many(batch)
            except OutcomeUnknown as exc:  # nothing fiscal in this batch: whatever it left open is cancelled
                await self._cancel_quietly()
                raise device_error("link", device_text=exc.device_text) from None
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

    async def cash_operation(self, operation: CashOperation, *, checkpoint: Checkpoint | None = None) -> None:
        await self._enter(Mode.REGISTRATION)
        if checkpoint is not None:
            await checkpoint(await self.drawer_cash())
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

