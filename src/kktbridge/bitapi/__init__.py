"""The BIT driver KKT wire format (API 1.0–1.5): requests in every header style and body encoding, results out.

Pure: imports `fiscal` only. Decoding never raises anything but PacketError (a BridgeError), whatever
the bytes.
"""

from .body import decode_body
from .compat import Adjustment
from .commands import (
    CardOperationCommand,
    CashCommand,
    CheckMarkingCommand,
    Command,
    CommandType,
    ReceiptCommand,
    ServiceCommand,
    ShowMode,
    command_type,
)
from .headers import RequestHeaders, parse_headers
from .jsontext import JsonObject, dumps, loads
from .packet import MAX_COMMANDS, Packet, PacketError, decode_commands, decode_request
from .receipt import ReceiptDefaults
from .results import CommandResult, encode_packet_error, encode_results, fiscal_fields, success_text
from .tags import tag_of

__all__ = [
    "MAX_COMMANDS",
    "Adjustment",
    "CardOperationCommand",
    "CashCommand",
    "CheckMarkingCommand",
    "Command",
    "CommandResult",
    "CommandType",
    "JsonObject",
    "Packet",
    "PacketError",
    "ReceiptCommand",
    "ReceiptDefaults",
    "RequestHeaders",
    "ServiceCommand",
    "ShowMode",
    "command_type",
    "decode_body",
    "decode_commands",
    "decode_request",
    "dumps",
    "encode_packet_error",
    "encode_results",
    "fiscal_fields",
    "loads",
    "parse_headers",
    "success_text",
    "tag_of",
]
