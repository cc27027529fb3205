"""Every command type of API 1.2–1.5 and its data; the spellings clients really send."""

import base64

import pytest

from kktbridge.bitapi import (
    CardOperationCommand,
    CashCommand,
    CheckMarkingCommand,
    CommandType,
    ServiceCommand,
    ShowMode,
    command_type,
)
from kktbridge.fiscal import Cashier, CashOperationKind

CASHIER = {"cashierName_1021": "Пупкин Иван Трофимович", "cashierInn_1203": ""}


@pytest.mark.parametrize("wire, kind", [(t.wire, t) for t in CommandType] + [
    ("kkt\u0421ashIn", CommandType.CASH_IN),  # Cyrillic С as in the 1.4/1.5 docs
    ("kkt\u0421ashOut", CommandType.CASH_OUT),
    ("KKTXREPORT", CommandType.X_REPORT),
])
def test_command_type_names(wire, kind):
    assert command_type(wire) is kind


@pytest.mark.parametrize("wire", [" kktOpenShift ", "kktOpenShift\n", "\u00a0kktXReport", "kkt OpenShift", ""])
def test_command_types_are_identifiers_not_guesses(wire):
    assert command_type(wire) is None


def test_devices_of_types():
    assert {t.device for t in CommandType if t.wire.startswith("kkt")} == {"kkt"}
    assert {t.device for t in CommandType if t.wire.startswith("bnk")} == {"bnk"}


@pytest.mark.parametrize("kind", [CommandType.OPEN_SHIFT, CommandType.CLOSE_SHIFT, CommandType.X_REPORT,
                                  CommandType.OPEN_DRAWER])
def test_service_commands(decode, kind):
    command = decode([{"name": "n", "type": kind.wire, "data": CASHIER}]).commands[0]
    assert isinstance(command, ServiceCommand) and command.type is kind
    assert command.cashier.name == "Пупкин Иван Трофимович" and command.cashier.inn is None
    bare = decode([{"name": "n", "type": kind.wire}]).commands[0]
    assert bare.cashier is None
    php_empty = decode('[{"name":"n","type":"%s","data":[]}]' % kind.wire).commands[0]  # PHP writes {} as []
    assert php_empty.cashier is None


def test_cashier_inn_checked(decode, refusal):
    packet = [{"name": "n", "type": "kktOpenShift", "data": {"cashierName_1021": "И", "cashierInn_1203": "123"}}]
    assert refusal(packet, strict=True) == {"[0].data.cashierInn_1203": "inn"}
    command = decode(packet).commands[0]  # not an INN: left out, and said so
    assert command.cashier == Cashier("И", None)
    assert [(w.path, w.code) for w in command.warnings] == [("[0].data.cashierInn_1203", "cashier_inn_dropped")]
    good = [{"name": "n", "type": "kktOpenShift", "data": {"cashierName_1021": "И", "cashierInn_1203": "500100732259"}}]
    command = decode(good).commands[0]
    assert command.cashier == Cashier("И", "500100732259") and command.warnings == ()


@pytest.mark.parametrize("packet", [
    [{"name": "Внесение", "type": "kktCashIn", "cashSum": 111.11, "data": CASHIER}],
    [{"name": "Внесение", "type": "kkt\u0421ashIn", "sum": 111.11, "data": CASHIER}],  # before 2025-05-26
    [{"name": "Внесение", "type": "kktCashIn", "data": {**CASHIER, "cashSum": "111.11"}}],
])
def test_cash_in(decode, packet):
    command = decode(packet).commands[0]
    assert isinstance(command, CashCommand)
    assert command.operation.kind is CashOperationKind.CASH_IN and command.operation.amount == 11111
    assert command.operation.cashier.name.startswith("Пупкин")


def test_cash_out_and_errors(decode, refusal):
    command = decode([{"name": "x", "type": "kktCashOut", "cashSum": 1.23}]).commands[0]
    assert command.operation.kind is CashOperationKind.CASH_OUT and command.operation.amount == 123
    assert refusal([{"name": "x", "type": "kktCashOut"}]) == {"[0].cashSum": "required"}
    assert refusal([{"name": "x", "type": "kktCashOut", "cashSum": 0}]) == {"[0].cashSum": "range"}
    assert refusal([{"name": "x", "type": "kktCashOut", "cashSum": "много"}]) == {"[0].cashSum": "money_format"}


def test_card_commands(decode, refusal):
    pay = decode([{"name": "1", "type": "bnkCardPayment", "data": {"sum": 12}}]).commands[0]
    assert isinstance(pay, CardOperationCommand) and pay.amount == 1200 and pay.device == "bnk"
    ret = decode([{"name": "2", "type": "bnkCardReturn", "data": {"sum": 12, "rrn": 123456789012}}]).commands[0]
    assert ret.amount == 1200 and ret.rrn == "123456789012"
    for kind in ("bnkCardShortReport", "bnkCardFullReport", "bnkCardSverkaItogov", "bnkCardLastOperationResult",
                 "bnkCardCancel"):
        command = decode([{"name": "r", "type": kind}]).commands[0]
        assert command.amount is None and command.rrn is None
    assert refusal([{"name": "1", "type": "bnkCardPayment", "data": {}}]) == {"[0].data.sum": "required"}
    assert refusal([{"name": "1", "type": "bnkCardPayment", "data": {"sum": 0}}]) == {"[0].data.sum": "range"}
    assert refusal([{"name": "1", "type": "bnkCardPayment"}]) == {"[0].data.sum": "required"}
    assert refusal([{"name": "2", "type": "bnkCardReturn", "data": {"sum": 1}}]) == {"[0].data.rrn": "required"}
    assert refusal([{"name": "2", "type": "bnkCardReturn", "data": {"sum": 1, "rrn": "12 34"}}]) == {
        "[0].data.rrn": "format"}


def test_check_marking(decode, refusal):
    code = base64.b64encode(b"010460358601467421\x1d91EE10").decode()
    command = decode([{"name": "km", "type": "kktCheckKM", "data": {"km_2000": code}}]).commands[0]
    assert isinstance(command, CheckMarkingCommand) and command.code == b"010460358601467421\x1d91EE10"
    assert refusal([{"name": "km", "type": "kktCheckKM", "data": {}}]) == {"[0].data.km_2000": "required"}


def test_show_mode(decode, refusal):
    assert decode([{"name": "x", "type": "kktXReport", "showMode": "4"}]).commands[0].show_mode is ShowMode.NEVER
    assert decode([{"name": "x", "type": "kktXReport", "showMode": 1}]).commands[0].show_mode is ShowMode.ALWAYS
    assert refusal([{"name": "x", "type": "kktXReport", "showMode": 3}]) == {"[0].showMode": "code"}


def test_unknown_and_malformed_commands(refusal):
    found = refusal([{"name": "x", "type": "kktPrintSomething"}, {"name": "y"}, "text", {"type": 5},
                     {"type": "kktXReport", "data": "no"}])
    assert found == {"[0].type": "unknown_command", "[1].type": "required", "[2]": "type",
                     "[3].type": "unknown_command", "[4].data": "type"}


def test_unknown_type_lists_the_known_ones(decode):
    from kktbridge.bitapi import PacketError
    with pytest.raises(PacketError) as info:
        decode([{"name": "x", "type": "kktZReport"}])
    assert "kktCloseShift" in info.value.fields[0].en and "kktCloseShift" in info.value.fields[0].ru


def test_name_defaults_to_position_and_type(decode):
    assert decode([{"type": "kktXReport"}]).commands[0].name == "1. kktXReport"
    assert decode([{"name": 7, "type": "kktXReport"}]).commands[0].name == "7"
