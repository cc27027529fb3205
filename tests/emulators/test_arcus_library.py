"""The arccom emulator, built with the system C compiler and driven through ctypes like arccom.dll itself.

Default op codes of the emulator (DEFAULT_OPS in arccom_emu.c): 1 purchase, 2 cancel last, 3 refund, 4 cancel,
6 full report, 7 and 11 settlement, 8 short report, 96 and 110 ping, 113 last operation.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest

from kktbridge.emulators.arcus import EmulatorBuildError, build_library
from kktbridge.emulators.arcus.build import SOURCE_NAME, compile_command, library_name

PURCHASE, CANCEL_LAST, REFUND, CANCEL = 1, 2, 3, 4
FULL_REPORT, SETTLEMENT, SHORT_REPORT, SETTLEMENT_11 = 6, 7, 8, 11
PING, LAST_OPERATION = 96, 113

E_HANDLE, E_NOKEY, E_SMALL, E_BUSY, E_PARAM, E_OPCODE, E_CONFIG = -1, -2, -3, -5, -6, -7, -8

NOW = "20251123190512"
MASKED = "4276********1234"
BOUND_S = 5.0


def _compiler() -> str | None:
    cc = os.environ.get("CC", "").split()
    for name in ([cc[0]] if cc else []) + ["cc", "gcc", "clang"]:
        if shutil.which(name):
            return name
    return None


pytestmark = pytest.mark.skipif(_compiler() is None, reason="no C compiler on PATH")


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    c_buf = ctypes.POINTER(ctypes.c_char)
    lib.CreateITPos.argtypes, lib.CreateITPos.restype = [], ctypes.c_void_p
    lib.DeleteITPos.argtypes, lib.DeleteITPos.restype = [ctypes.c_void_p], None
    lib.ITPosSet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.ITPosSet.restype = ctypes.c_int
    lib.ITPosGet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, c_buf, ctypes.c_int]
    lib.ITPosGet.restype = ctypes.c_int
    lib.ITPosRun.argtypes, lib.ITPosRun.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_int
    lib.ITPosClear.argtypes, lib.ITPosClear.restype = [ctypes.c_void_p], ctypes.c_int
    lib.Stop.argtypes, lib.Stop.restype = [ctypes.c_void_p], None
    return lib


@pytest.fixture(scope="session")
def lib_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library(tmp_path_factory.mktemp("arccom"))


@pytest.fixture(scope="session")
def lib(lib_path: Path) -> ctypes.CDLL:
    return _declare(ctypes.CDLL(str(lib_path)))


@pytest.fixture(autouse=True)
def _no_emulator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ARCCOM_EMU_"):
            monkeypatch.delenv(name)


class Pos:
    """One ITPos handle, with the calls a client makes."""

    def __init__(self, lib: ctypes.CDLL, **settings: object) -> None:
        self.lib = lib
        self.h = lib.CreateITPos()
        assert self.h
        for key, value in settings.items():
            self.set(key, value)

    def set(self, key: str, value: object) -> None:
        assert self.lib.ITPosSet(self.h, key.encode(), str(value).encode("cp1251"), -1) == 0

    def get_bytes(self, key: str) -> bytes | None:
        needed = self.lib.ITPosGet(self.h, key.encode(), None, -1)
        if needed == E_NOKEY:
            return None
        assert needed >= 1
        buf = ctypes.create_string_buffer(needed)
        assert self.lib.ITPosGet(self.h, key.encode(), buf, needed) == 0
        assert buf.raw[needed - 1] == 0
        return buf.raw[: needed - 1]

    def get(self, key: str) -> str | None:
        raw = self.get_bytes(key)
        return None if raw is None else raw.decode("cp1251")

    def run(self, opcode: int, **inputs: object) -> int:
        assert self.lib.ITPosClear(self.h) == 0
        for key, value in inputs.items():
            self.set(key, value)
        return self.lib.ITPosRun(self.h, opcode)

    def ok(self, opcode: int, **inputs: object) -> str:
        """Runs an operation that must reach the terminal; returns its response code."""
        assert self.run(opcode, **inputs) == 0
        code = self.get("response_code")
        assert code is not None
        return code

    def close(self) -> None:
        if self.h:
            self.lib.DeleteITPos(self.h)
            self.h = None


@pytest.fixture
def make_pos(lib: ctypes.CDLL, tmp_path: Path) -> Iterator[Callable[..., Pos]]:
    handles: list[Pos] = []

    def make(**settings: object) -> Pos:
        base: dict[str, object] = {
            "emu_state_file": tmp_path / "state.txt",
            "emu_slip_file": tmp_path / "cheq.out",
            "emu_now": NOW,
        }
        base.update(settings)
        pos = Pos(lib, **{k: v for k, v in base.items() if v is not None})
        handles.append(pos)
        return pos

    yield make
    for pos in handles:
        pos.close()


@pytest.fixture
def pos(make_pos: Callable[..., Pos]) -> Pos:
    return make_pos()


def _slip(pos: Pos) -> str:
    raw = pos.get_bytes("slip")
    assert raw is not None
    return raw.decode("cp1251")


# --- purchase --------------------------------------------------------------------------------------------


def test_purchase_approved_fills_every_output_key(pos: Pos) -> None:
    assert pos.ok(PURCHASE, amount=1200, currency=643) == "00"
    rrn, auth = pos.get("rrn"), pos.get("auth_code")
    assert rrn is not None and re.fullmatch(r"\d{12}", rrn)
    assert auth is not None and re.fullmatch(r"[0-9A-Z]{6}", auth)
    assert re.fullmatch(r"\d{10}", pos.get("transaction_id") or "")
    assert pos.get("text_message") == "ОДОБРЕНО"
    assert pos.get("received_text_message") == "ОДОБРЕНО"
    assert pos.get("pan") == MASKED
    assert pos.get("amount") == "1200"
    assert pos.get("result_amount") == "1200"
    assert pos.get("card_type") == "VISA"
    assert pos.get("application_label") == "VISA CLASSIC"
    assert pos.get("cardholder_name") == "EMULATED/CARD"
    assert pos.get("terminal_id") == "00012345"
    assert (pos.get("date"), pos.get("time"), pos.get("emu_datetime")) == ("251123", "190512", NOW)
    assert pos.get("emu_operation") == "purchase"


def test_purchase_slip_is_cp1251_and_parsable_like_the_real_one(pos: Pos, tmp_path: Path) -> None:
    assert pos.ok(PURCHASE, amount=1200) == "00"
    raw = pos.get_bytes("slip")
    assert raw is not None
    assert "СУММА".encode("cp1251") in raw and "СУММА".encode() not in raw
    slip = raw.decode("cp1251")
    lines = slip.split("\r\n")
    assert lines[:6] == [
        "ЭМУЛЯТОР ARCUS2",
        "ТЕРМИНАЛ: 00012345",
        "ДАТА: 23.11.2025 ВРЕМЯ: 19:05:12",
        "ОПЛАТА",
        f"PAN:{MASKED}",
        "VISA",
    ]
    assert "СУММА: 12.00 РУБ" in lines
    assert f"КОД АВТОРИЗАЦИИ: {pos.get('auth_code')}" in lines
    assert "ОДОБРЕНО" in lines and "КОД ОТВЕТА: 00" in lines
    assert "НЕ ОПЛАЧИВАТЬ" not in slip
    # what clients parse out of cheq.out (C++ ArcusHandlers)
    assert re.search(r"RRN:(\d+)", slip).group(1) == pos.get("rrn")  # type: ignore[union-attr]
    assert re.search(r"PAN:([*\d]+)", slip).group(1) == MASKED  # type: ignore[union-attr]
    assert (tmp_path / "cheq.out").read_bytes() == raw


def test_each_purchase_gets_the_next_rrn_and_a_new_auth_code(pos: Pos) -> None:
    seen = []
    for amount in (100, 200, 300):
        assert pos.ok(PURCHASE, amount=amount) == "00"
        seen.append((int(pos.get("rrn") or 0), pos.get("auth_code"), pos.get("transaction_id")))
    rrns = [s[0] for s in seen]
    assert rrns == [rrns[0], rrns[0] + 1, rrns[0] + 2]
    assert len({s[1] for s in seen}) == 3 and len({s[2] for s in seen}) == 3


def test_card_set_by_emu_pan(make_pos: Callable[..., Pos]) -> None:
    pos = make_pos(emu_pan="2200123456789012", emu_cardholder="IVANOV/IVAN")
    assert pos.ok(PURCHASE, amount=500) == "00"
    assert (pos.get("pan"), pos.get("card_type"), pos.get("cardholder_name")) == (
        "2200********9012",
        "MIR",
        "IVANOV/IVAN",
    )


# --- declines --------------------------------------------------------------------------------------------


def test_decline_above_the_limit_with_51(make_pos: Callable[..., Pos], tmp_path: Path) -> None:
    pos = make_pos(emu_decline_over=100000)
    assert pos.ok(PURCHASE, amount=100000) == "00"
    assert pos.ok(PURCHASE, amount=100001) == "51"
    assert pos.get("text_message") == "НЕДОСТАТОЧНО СРЕДСТВ"
    assert pos.get("auth_code") is None
    assert pos.get("result_amount") == "0"
    assert re.fullmatch(r"\d{12}", pos.get("rrn") or "")
    slip = _slip(pos).split("\r\n")
    assert {"ОТКАЗ", "НЕДОСТАТОЧНО СРЕДСТВ", "КОД ОТВЕТА: 51", "НЕ ОПЛАЧИВАТЬ", "СУММА: 1000.01 РУБ"} <= set(slip)
    assert (tmp_path / "cheq.out").read_bytes().decode("cp1251").split("\r\n") == slip


@pytest.mark.parametrize(
    ("amount", "code", "text"),
    [
        (1313, "51", "НЕДОСТАТОЧНО СРЕДСТВ"),
        (666, "05", "НЕ ОБСЛУЖИВАТЬ"),
        (777, "54", "ОТКАЗ"),
        (1314, "00", "ОДОБРЕНО"),
    ],
)
def test_decline_listed_amounts(make_pos: Callable[..., Pos], amount: int, code: str, text: str) -> None:
    pos = make_pos(emu_decline_amounts="1313:51,666,777:54")
    assert pos.ok(PURCHASE, amount=amount) == code
    assert pos.get("text_message") == text


# --- refund ----------------------------------------------------------------------------------------------


def test_refund_by_rrn_and_transaction_id_up_to_the_remaining_amount(pos: Pos) -> None:
    assert pos.ok(PURCHASE, amount=5000) == "00"
    rrn, trx = pos.get("rrn"), pos.get("transaction_id")

    assert pos.ok(REFUND, amount=2000, rrn=rrn) == "00"
    assert (pos.get("result_amount"), pos.get("emu_operation"), pos.get("pan")) == ("2000", "refund", MASKED)
    assert pos.get("rrn") != rrn
    slip = _slip(pos)
    assert "ВОЗВРАТ" in slip.split("\r\n") and "СУММА: 20.00 РУБ" in slip

    assert pos.ok(REFUND, amount=3001, rrn=rrn) == "13"
    assert pos.get("text_message") == "НЕВЕРНАЯ СУММА"
    assert pos.get("result_amount") == "0"
    assert pos.ok(REFUND, amount=3000, transaction_id=trx) == "00"
    assert pos.ok(REFUND, amount=1, rrn=rrn) == "13"


def test_refund_of_an_unknown_or_declined_operation_is_refused(make_pos: Callable[..., Pos]) -> None:
    pos = make_pos(emu_decline_amounts="999:05")
    assert pos.ok(REFUND, amount=100, rrn="999999999999") == "25"
    assert pos.get("text_message") == "ОПЕРАЦИЯ НЕ НАЙДЕНА"
    assert pos.ok(PURCHASE, amount=999) == "05"
    assert pos.ok(REFUND, amount=100, rrn=pos.get("rrn")) == "25"


def test_refund_of_a_refund_is_refused(pos: Pos) -> None:
    assert pos.ok(PURCHASE, amount=1000) == "00"
    assert pos.ok(REFUND, amount=100, rrn=pos.get("rrn")) == "00"
    assert pos.ok(REFUND, amount=100, rrn=pos.get("rrn")) == "12"


# --- cancel ----------------------------------------------------------------------------------------------


def test_cancel_by_rrn_voids_once_and_leaves_nothing_to_refund(pos: Pos) -> None:
    assert pos.ok(PURCHASE, amount=4200) == "00"
    rrn = pos.get("rrn")
    assert pos.ok(CANCEL, amount=4100, rrn=rrn) == "13"
    assert pos.ok(CANCEL, rrn=rrn) == "00"
    assert (pos.get("amount"), pos.get("result_amount"), pos.get("emu_operation")) == ("4200", "4200", "cancel")
    assert "ОТМЕНА" in _slip(pos).split("\r\n")
    assert pos.ok(CANCEL, rrn=rrn) == "12"
    assert pos.get("text_message") == "НЕВЕРНАЯ ОПЕРАЦИЯ"
    assert pos.ok(REFUND, amount=1, rrn=rrn) == "13"


def test_cancel_without_rrn_voids_the_last_operation(pos: Pos) -> None:
    assert pos.ok(PURCHASE, amount=100) == "00"
    first = pos.get("rrn")
    assert pos.ok(PURCHASE, amount=250) == "00"
    assert pos.ok(CANCEL) == "00"
    assert pos.get("amount") == "250"
    assert pos.ok(CANCEL_LAST) == "12"  # the last approved operation is now a cancel
    assert pos.ok(REFUND, amount=100, rrn=first) == "00"  # the first purchase is untouched
    assert pos.ok(CANCEL_LAST) == "00"  # voids that refund
    assert pos.ok(REFUND, amount=100, rrn=first) == "00"  # so the full amount is refundable again


def test_cancel_of_a_partly_refunded_purchase_is_refused(pos: Pos) -> None:
    assert pos.ok(PURCHASE, amount=1000) == "00"
    rrn = pos.get("rrn")
    assert pos.ok(REFUND, amount=10, rrn=rrn) == "00"
    assert pos.ok(CANCEL, rrn=rrn) == "12"
    assert pos.ok(CANCEL, rrn="123456789012") == "25"


# --- settlement and reports ------------------------------------------------------------------------------


def _totals(pos: Pos) -> dict[str, int]:
    keys = (
        "batch",
        "purchase_count",
        "purchase_total",
        "refund_count",
        "refund_total",
        "cancel_count",
        "cancel_total",
        "net_total",
    )
    return {k: int(pos.get(f"emu_{k}") or "x") for k in keys}


def test_reports_and_settlement(pos: Pos, tmp_path: Path) -> None:
    rrns = []
    for amount in (1000, 2500, 700):
        assert pos.ok(PURCHASE, amount=amount) == "00"
        rrns.append(pos.get("rrn"))
    assert pos.ok(REFUND, amount=300, rrn=rrns[0]) == "00"
    rrns.append(pos.get("rrn"))
    assert pos.ok(CANCEL, rrn=rrns[2]) == "00"
    rrns.append(pos.get("rrn"))
    expected = {
        "batch": 1,
        "purchase_count": 3,
        "purchase_total": 4200,
        "refund_count": 1,
        "refund_total": 300,
        "cancel_count": 1,
        "cancel_total": 700,
        "net_total": 3200,
    }

    assert pos.ok(SHORT_REPORT) == "00"
    assert _totals(pos) == expected
    short = _slip(pos).split("\r\n")
    assert "КРАТКИЙ ОТЧЕТ" in short and "ИТОГО: 32.00 РУБ" in short and "ОПЛАТА: 3 / 42.00 РУБ" in short
    assert not any(rrn in line for rrn in rrns for line in short)
    assert (tmp_path / "cheq.out").read_bytes().decode("cp1251").split("\r\n") == short

    assert pos.ok(FULL_REPORT) == "00"
    assert _totals(pos) == expected
    full = _slip(pos)
    assert "ПОЛНЫЙ ОТЧЕТ" in full and all(rrn in full for rrn in rrns)
    assert "ВОЗВРАТ 3.00" in full and "ВОЗВРАТ: 1 / 3.00 РУБ" in full

    assert pos.ok(SHORT_REPORT) == "00"  # reports do not reset
    assert _totals(pos) == expected

    assert pos.ok(SETTLEMENT_11) == "00"
    assert _totals(pos) == expected
    assert pos.get("text_message") == "ИТОГИ СОВПАЛИ"
    settlement = _slip(pos).split("\r\n")
    assert {"СВЕРКА ИТОГОВ", "ПАКЕТ: 1", "ИТОГИ СОВПАЛИ", "ИТОГО: 32.00 РУБ"} <= set(settlement)

    assert pos.ok(SHORT_REPORT) == "00"
    assert _totals(pos) == {k: (2 if k == "batch" else 0) for k in expected}

    # after the settlement a purchase can no longer be voided, but is still refundable
    assert pos.ok(CANCEL, rrn=rrns[1]) == "12"
    assert pos.ok(REFUND, amount=2500, rrn=rrns[1]) == "00"
    assert pos.ok(SETTLEMENT) == "00"  # 7 is a settlement too
    assert _totals(pos)["batch"] == 2 and _totals(pos)["net_total"] == -2500
    assert pos.ok(SHORT_REPORT) == "00"
    assert _totals(pos)["batch"] == 3


# --- last operation, no answer, user cancel, ping ---------------------------------------------------------


def test_last_operation_returns_the_result_of_the_last_exchange(make_pos: Callable[..., Pos]) -> None:
    pos = make_pos(emu_decline_amounts="666:05")
    assert pos.ok(LAST_OPERATION) == "25"
    assert pos.ok(PURCHASE, amount=1200) == "00"
    rrn, auth = pos.get("rrn"), pos.get("auth_code")
    assert pos.ok(SHORT_REPORT) == "00"  # reports are not operations
    assert pos.ok(LAST_OPERATION) == "00"
    assert (pos.get("rrn"), pos.get("auth_code"), pos.get("amount")) == (rrn, auth, "1200")
    assert pos.get("emu_operation") == "purchase"
    assert "КОПИЯ" in _slip(pos).split("\r\n")
    assert pos.ok(PURCHASE, amount=666) == "05"
    assert pos.ok(LAST_OPERATION) == "05"
    assert pos.get("amount") == "666"


def test_no_answer_is_999_and_records_nothing(make_pos: Callable[..., Pos], tmp_path: Path) -> None:
    pos = make_pos(emu_no_answer=1)
    for opcode in (PURCHASE, SETTLEMENT_11, PING):
        assert pos.ok(opcode, amount=1200) == "999"
        assert pos.get("text_message") == "Пин-пад не отвечает"
        assert pos.get_bytes("text_message") == "Пин-пад не отвечает".encode("cp1251")
        assert pos.get("rrn") is None and pos.get("slip") is None
    assert not (tmp_path / "cheq.out").exists()
    pos.set("emu_no_answer", 0)
    assert pos.ok(PING) == "00"
    assert pos.ok(LAST_OPERATION) == "25"


def test_user_cancel_is_17_and_is_the_last_operation(make_pos: Callable[..., Pos]) -> None:
    pos = make_pos(emu_user_cancel=1)
    assert pos.ok(PURCHASE, amount=1200) == "17"
    assert pos.get("text_message") == "ОПЕРАЦИЯ ОТМЕНЕНА"
    assert pos.get("rrn") is None and pos.get("auth_code") is None and pos.get("result_amount") == "0"
    assert "КОД ОТВЕТА: 17" in _slip(pos).split("\r\n")
    pos.set("emu_user_cancel", 0)
    assert pos.ok(LAST_OPERATION) == "17"


# --- Stop and the threads ---------------------------------------------------------------------------------


def _wait_busy(pos: Pos) -> None:
    deadline = time.monotonic() + BOUND_S
    while pos.get("emu_busy") != "1":
        assert time.monotonic() < deadline, "ITPosRun did not start"
        time.sleep(0.005)


def test_stop_from_another_thread_interrupts_a_long_run(make_pos: Callable[..., Pos]) -> None:
    pos = make_pos(emu_latency_ms=60000)
    pos.set("amount", 1200)
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(pos.lib.ITPosRun(pos.h, PURCHASE)))
    worker.start()
    _wait_busy(pos)
    assert pos.lib.ITPosRun(pos.h, PURCHASE) == E_BUSY
    started = time.monotonic()
    pos.lib.Stop(pos.h)
    worker.join(BOUND_S)
    assert not worker.is_alive()
    assert time.monotonic() - started < BOUND_S
    assert result == [0]
    assert pos.get("response_code") == "17"
    assert pos.get("text_message") == "ОПЕРАЦИЯ ПРЕРВАНА"
    assert pos.get("emu_busy") == "0"
    pos.set("emu_latency_ms", 0)
    assert pos.ok(LAST_OPERATION) == "17"


def test_latency_without_stop_completes_and_stop_when_idle_is_ignored(make_pos: Callable[..., Pos]) -> None:
    pos = make_pos(emu_latency_ms=50)
    pos.lib.Stop(pos.h)
    started = time.monotonic()
    assert pos.ok(PURCHASE, amount=100) == "00"
    assert time.monotonic() - started >= 0.045


def test_delete_during_a_run_ends_it(lib: ctypes.CDLL, tmp_path: Path) -> None:
    pos = Pos(lib, emu_state_file=tmp_path / "s.txt", emu_latency_ms=60000, amount=100)
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(lib.ITPosRun(pos.h, PURCHASE)))
    worker.start()
    _wait_busy(pos)
    lib.DeleteITPos(pos.h)
    worker.join(BOUND_S)
    assert not worker.is_alive() and result == [0]
    assert lib.ITPosRun(pos.h, PURCHASE) == E_HANDLE


# --- the key API -----------------------------------------------------------------------------------------


def test_get_length_query_and_too_small_buffer(pos: Pos) -> None:
    assert pos.ok(PURCHASE, amount=1200) == "00"
    rrn = (pos.get("rrn") or "").encode()
    assert pos.lib.ITPosGet(pos.h, b"rrn", None, -1) == 13
    buf = ctypes.create_string_buffer(b"\xaa" * 20, 20)
    assert pos.lib.ITPosGet(pos.h, b"rrn", buf, 12) == E_SMALL
    assert buf.raw == b"\x00" + b"\xaa" * 19
    assert pos.lib.ITPosGet(pos.h, b"rrn", buf, 0) == E_SMALL
    assert pos.lib.ITPosGet(pos.h, b"rrn", buf, 13) == 0
    assert buf.raw[:13] == rrn + b"\x00" and buf.raw[13:] == b"\xaa" * 7
    assert pos.lib.ITPosGet(pos.h, b"no_such_key", None, -1) == E_NOKEY
    slip_len = pos.lib.ITPosGet(pos.h, b"slip", None, -1)
    assert slip_len == len(pos.get_bytes("slip") or b"") + 1 > 100


def test_set_with_an_explicit_size_and_clear(pos: Pos) -> None:
    assert pos.lib.ITPosSet(pos.h, b"emu_terminal_id", b"ABCDEFGHXYZ", 8) == 0
    assert pos.lib.ITPosSet(pos.h, b"amount", b"1234567", 3) == 0
    assert pos.lib.ITPosRun(pos.h, PURCHASE) == 0
    assert (pos.get("terminal_id"), pos.get("amount")) == ("ABCDEFGH", "123")
    assert pos.lib.ITPosClear(pos.h) == 0
    assert pos.get("response_code") is None and pos.get("amount") is None
    assert pos.get("emu_terminal_id") == "ABCDEFGH"  # settings survive ITPosClear


def test_outputs_of_one_run_are_not_inputs_of_the_next(pos: Pos) -> None:
    assert pos.ok(PURCHASE, amount=700) == "00"
    # no ITPosClear: the previous rrn/amount are outputs, so a refund still lacks its inputs
    assert pos.lib.ITPosRun(pos.h, REFUND) == E_PARAM
    assert pos.get("response_code") is None


def test_settings_from_the_environment(lib: ctypes.CDLL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCCOM_EMU_TERMINAL_ID", "77700077")
    monkeypatch.setenv("ARCCOM_EMU_STATE_FILE", str(tmp_path / "env-state.txt"))
    monkeypatch.setenv("ARCCOM_EMU_DECLINE_OVER", "500")
    pos = Pos(lib)
    try:
        assert pos.ok(PURCHASE, amount=400) == "00"
        assert pos.get("terminal_id") == "77700077"
        assert pos.ok(PURCHASE, amount=501) == "51"
        assert "seq 2" in (tmp_path / "env-state.txt").read_text()
    finally:
        pos.close()


def test_op_code_map_can_be_replaced(make_pos: Callable[..., Pos]) -> None:
    pos = make_pos(emu_ops="purchase=10,refund=20,settlement=30,last_operation=40")
    assert pos.run(PURCHASE, amount=100) == E_OPCODE
    assert pos.get("text_message") == "НЕИЗВЕСТНАЯ ОПЕРАЦИЯ"
    assert pos.ok(10, amount=100) == "00"
    rrn = pos.get("rrn")
    assert pos.ok(20, amount=100, rrn=rrn) == "00"
    assert pos.ok(40) == "00" and pos.get("emu_operation") == "refund"
    assert pos.ok(30) == "00" and pos.get("emu_net_total") == "0"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("emu_ops", "purchase=1,buy=2"),
        ("emu_ops", "purchase=1,refund=1"),
        ("emu_decline_amounts", "12:x"),
        ("emu_latency_ms", "soon"),
        ("emu_pan", "4276"),
        ("emu_now", "2025"),
        ("emu_no_answer", "maybe"),
    ],
)
def test_bad_settings_stop_the_run(make_pos: Callable[..., Pos], key: str, value: str) -> None:
    pos = make_pos(**{key: value})
    assert pos.run(PURCHASE, amount=100) == E_CONFIG
    assert pos.get("text_message") == "ОШИБКА НАСТРОЙКИ ЭМУЛЯТОРА"


# --- errors before any exchange --------------------------------------------------------------------------


def test_bad_handles_are_refused_without_crashing(lib: ctypes.CDLL) -> None:
    buf = ctypes.create_string_buffer(16)
    for handle in (None, 0xDEAD0, ctypes.addressof(buf)):
        assert lib.ITPosRun(handle, PURCHASE) == E_HANDLE
        assert lib.ITPosSet(handle, b"amount", b"100", -1) == E_HANDLE
        assert lib.ITPosGet(handle, b"amount", None, -1) == E_HANDLE
        assert lib.ITPosClear(handle) == E_HANDLE
        lib.Stop(handle)
        lib.DeleteITPos(handle)
    h = lib.CreateITPos()
    lib.DeleteITPos(h)
    assert lib.ITPosRun(h, PURCHASE) == E_HANDLE


@pytest.mark.parametrize(
    ("opcode", "inputs", "error", "text"),
    [
        (PURCHASE, {}, E_PARAM, "НЕ ЗАДАНА СУММА"),
        (PURCHASE, {"amount": "12.00"}, E_PARAM, "НЕВЕРНАЯ СУММА"),
        (PURCHASE, {"amount": "0"}, E_PARAM, "НЕВЕРНАЯ СУММА"),
        (PURCHASE, {"amount": 100, "currency": 840}, E_PARAM, "НЕВЕРНАЯ ВАЛЮТА"),
        (REFUND, {"amount": 100}, E_PARAM, "НЕ ЗАДАН RRN ИЛИ TRANSACTION_ID"),
        (REFUND, {"rrn": "000000000001"}, E_PARAM, "НЕ ЗАДАНА СУММА"),
        (55, {"amount": 100}, E_OPCODE, "НЕИЗВЕСТНАЯ ОПЕРАЦИЯ"),
    ],
)
def test_requests_that_cannot_run(pos: Pos, opcode: int, inputs: dict[str, object], error: int, text: str) -> None:
    assert pos.run(opcode, **inputs) == error
    assert pos.get("text_message") == text
    assert pos.get("response_code") is None


def test_unknown_emu_keys_and_bad_arguments_are_refused(pos: Pos) -> None:
    assert pos.lib.ITPosSet(pos.h, b"emu_declineover", b"1", -1) == E_PARAM
    assert pos.lib.ITPosSet(pos.h, b"emu_busy", b"1", -1) == E_PARAM
    assert pos.lib.ITPosSet(pos.h, None, b"1", -1) == E_PARAM
    assert pos.lib.ITPosSet(pos.h, b"amount", None, -1) == E_PARAM
    assert pos.lib.ITPosSet(pos.h, b"amount", b"1", -2) == E_PARAM
    assert pos.lib.ITPosGet(pos.h, None, None, -1) == E_PARAM


# --- persistence -----------------------------------------------------------------------------------------


def test_state_file_is_shared_by_handles(make_pos: Callable[..., Pos]) -> None:
    first = make_pos()
    assert first.ok(PURCHASE, amount=900) == "00"
    rrn = first.get("rrn") or ""
    first.close()
    second = make_pos()
    assert second.ok(PURCHASE, amount=100) == "00"
    assert int(second.get("rrn") or 0) == int(rrn) + 1
    assert second.ok(REFUND, amount=900, rrn=rrn) == "00"


def test_state_file_continues_in_another_process(
    lib_path: Path, make_pos: Callable[..., Pos], tmp_path: Path
) -> None:
    child = textwrap.dedent(
        f"""
        import ctypes
        lib = ctypes.CDLL({str(lib_path)!r})
        lib.CreateITPos.restype = ctypes.c_void_p
        lib.ITPosSet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
        lib.ITPosGet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
        lib.ITPosRun.argtypes = [ctypes.c_void_p, ctypes.c_int]
        h = lib.CreateITPos()
        lib.ITPosSet(h, b"amount", b"4500", -1)
        assert lib.ITPosRun(h, 1) == 0
        buf = ctypes.create_string_buffer(64)
        assert lib.ITPosGet(h, b"rrn", buf, 64) == 0
        print(buf.value.decode())
        """
    )
    env = {**os.environ, "ARCCOM_EMU_STATE_FILE": str(tmp_path / "state.txt")}
    rrns = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        rrns.append(int(done.stdout.strip()))
    assert rrns[1] == rrns[0] + 1
    pos = make_pos()
    assert pos.ok(PURCHASE, amount=100) == "00"
    assert int(pos.get("rrn") or 0) == rrns[1] + 1
    assert pos.ok(REFUND, amount=4500, rrn=f"{rrns[0]:012d}") == "00"
    assert pos.ok(REFUND, amount=4501, rrn=f"{rrns[1]:012d}") == "13"


def test_without_state_file_handles_of_a_process_share_memory(lib: ctypes.CDLL) -> None:
    first, second = Pos(lib), Pos(lib)
    try:
        assert first.ok(PURCHASE, amount=300) == "00"
        rrn = first.get("rrn") or ""
        assert second.ok(PURCHASE, amount=300) == "00"
        assert int(second.get("rrn") or 0) == int(rrn) + 1
        assert second.ok(CANCEL, rrn=rrn) == "00"
    finally:
        first.close()
        second.close()


# --- the build -------------------------------------------------------------------------------------------


def test_source_ships_in_the_package() -> None:
    source = resources.files("kktbridge.emulators.arcus") / SOURCE_NAME
    assert source.is_file()
    assert "CreateITPos" in source.read_text(encoding="utf-8")


def test_build_is_reused_until_the_source_is_newer_or_different(tmp_path: Path) -> None:
    built = build_library(tmp_path)
    assert built == tmp_path / library_name()
    digest = tmp_path / f"{built.name}.sha256"
    source = resources.files("kktbridge.emulators.arcus") / SOURCE_NAME
    assert digest.read_text().strip() == hashlib.sha256(source.read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([built.name, digest.name])  # no build leftovers
    mtime = built.stat().st_mtime_ns
    assert build_library(tmp_path) == built and built.stat().st_mtime_ns == mtime

    os.utime(built, (0, 0))  # older than the source
    assert build_library(tmp_path) == built and built.stat().st_mtime > 0

    os.utime(built, None)
    digest.write_text("0" * 64)  # built from another version of the source
    mtime = built.stat().st_mtime_ns
    time.sleep(0.01)
    assert build_library(tmp_path) == built and built.stat().st_mtime_ns > mtime
    assert digest.read_text().strip() != "0" * 64


def test_missing_compiler_is_reported_in_russian_and_english(tmp_path: Path) -> None:
    with pytest.raises(EmulatorBuildError) as caught:
        build_library(tmp_path, compiler="no-such-cc-kktbridge")
    assert caught.value.code == "no_c_compiler"
    assert "не найден компилятор C" in str(caught.value) and "no C compiler found" in str(caught.value)


@pytest.mark.skipif(shutil.which("false") is None, reason="needs the false utility")
def test_failing_compiler_is_reported(tmp_path: Path) -> None:
    with pytest.raises(EmulatorBuildError) as caught:
        build_library(tmp_path, compiler="false")
    assert caught.value.code == "emulator_build_failed"
    assert "не удалось собрать эмулятор arccom" in str(caught.value) and "exit status 1" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_source_compiles_without_warnings(tmp_path: Path) -> None:
    source = Path(str(resources.files("kktbridge.emulators.arcus") / SOURCE_NAME))
    command = compile_command([_compiler() or "cc", "-Werror", "-Wpedantic", "-Wshadow"], source, tmp_path / "x.so")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
