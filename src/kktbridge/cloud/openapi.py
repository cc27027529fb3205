"""The OpenAPI 3.1 document of the JSON API v1, served at /api/v1/openapi.json.

Built from the same constants the handlers check (page size, waits, key lengths), and kept true by a
schemathesis run against the live service in the tests: every answer of every operation must match it.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..bitapi import MAX_COMMANDS
from ..bitapi.headers import MAX_ORDER_ID
from .api import CURSOR_DIGITS, MAX_IDEMPOTENCY_KEY, MAX_PAGE, MAX_WAIT
from .auth import ACCOUNT_HEADER, CSRF_HEADER, SESSION_COOKIE, SIGNATURE_HEADER, TIMESTAMP_HEADER
from .states import State
from .store import MAX_ID
from .submission import MAX_URL

__all__ = ["openapi_document"]

_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Bad parameters or body; `error.fields` names each", 401: "Not signed, or the signature or session "
            "is wrong", 403: "The session's CSRF token is missing or wrong", 404: "Nothing of this account has this id",
            409: "The key holds another request (`stored_request_hash`)", 413: "The body is too large",
            429: "Too many requests (see Retry-After)", 503: "The database is unreachable; retry later"}
    out = {str(status): _error(text[status]) for status in statuses}
    if "429" in out:
        out["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1},
                                                 "description": "seconds to wait"}}
    return out


_COMMON = (400, 401, 403, 413, 429, 503)


def _ok(schema: str, description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


SCHEMAS: dict[str, Any] = {
    "FieldError": {
        "type": "object", "required": ["path", "code", "ru", "en"],
        "properties": {"path": {"type": "string", "description": "the field as the caller named it, e.g. "
                                                                 "commands[1].data.purchases[0].price_1079"},
                       "code": {"type": "string"}, "ru": {"type": "string"}, "en": {"type": "string"}},
    },
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {
            "error": {"type": "object", "required": ["code", "ru", "en", "retryable"],
                      "properties": {"code": {"type": "string"}, "ru": {"type": "string"}, "en": {"type": "string"},
                                     "retryable": {"type": "boolean"},
                                     "fields": {"type": "array", "items": _ref("FieldError")}}},
            "stored_request_hash": {"type": "string", "description": "409: the hash of the request stored under "
                                                                     "the key"},
            "receipt_id": {"type": "string", "format": "uuid", "description": "409: the receipt stored under the key"},
        },
    },
    "Command": {
        "type": "object", "required": ["type"],
        "description": "A BIT command {name, type, data}, as the local driver takes it (docs/input-format.md). "
                       "Register commands only: a bnk* command is refused.",
        "properties": {"name": {"type": ["string", "integer"]}, "type": {"type": "string", "minLength": 1},
                       "data": {"type": ["object", "array"]}},
    },
    "SubmitReceipt": {
        "type": "object", "required": ["order_id", "kkt_token", "commands"], "additionalProperties": False,
        "properties": {
            "order_id": {"type": "string", "minLength": 1, "maxLength": MAX_ORDER_ID,
                         "description": "the shop's order id; one receipt per order id and account"},
            "kkt_token": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$", "description": "the register's token"},
            "commands": {"type": "array", "minItems": 1, "maxItems": MAX_COMMANDS, "items": _ref("Command")},
            "webhook_url": {"type": "string", "maxLength": MAX_URL, "format": "uri",
                            "description": "where the receipt (this API's view) is POSTed, signed, when it ends; "
                                           "loopback and private addresses are refused (docs/cloud.md, Callbacks)"},
            "callback_url": {"type": "string", "maxLength": MAX_URL, "format": "uri", "deprecated": True,
                             "description": "webhook_url's older name"},
        },
    },
    "CourierReceipt": {
        "type": "object", "required": ["device_id", "commands"], "additionalProperties": False,
        "properties": {
            "device_id": {**_ID, "description": "one of the account's registers (GET /devices)"},
            "order_id": {"type": "string", "minLength": 1, "maxLength": MAX_ORDER_ID,
                         "description": "the order id; a new courier-<hex> one when absent"},
            "commands": {"type": "array", "minItems": 1, "maxItems": MAX_COMMANDS, "items": _ref("Command")},
        },
    },
    "Payload": {
        "type": ["object", "null"], "description": "ATOL Online's result fields for the fiscalized receipt",
        "properties": {
            "fiscal_receipt_number": {"type": ["integer", "null"]}, "shift_number": {"type": ["integer", "null"]},
            "receipt_datetime": {"type": ["string", "null"]}, "total": {"type": ["number", "null"]},
            "fn_number": {"type": ["string", "null"]}, "ecr_registration_number": {"type": ["string", "null"]},
            "fiscal_document_number": {"type": ["integer", "null"]},
            "fiscal_document_attribute": {"type": ["integer", "string", "null"]},
            "fns_site": {"type": "string"}, "ofd_inn": {"type": ["string", "null"]},
            "ofd_receipt_url": {"type": ["string", "null"]}, "qr": {"type": ["string", "null"]},
        },
    },
    "Receipt": {
        "type": "object",
        "required": ["id", "order_id", "state", "status", "source", "account_id", "driver_id", "device",
                     "created_at", "expires_at", "links"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "order_id": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in State]},
            "status": {"type": "string", "enum": ["wait", "done", "fail"], "description": "ATOL Online's status"},
            "source": {"type": "string"},
            "account_id": _ID, "driver_id": _ID,
            "device": {"type": "object", "required": ["id", "name"],
                       "properties": {"id": _ID, "name": {"type": "string"}}},
            "idempotency_key": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "delivered_at": _NULLABLE_TIME, "unknown_at": _NULLABLE_TIME, "finished_at": _NULLABLE_TIME,
            "expires_at": {"type": "string", "format": "date-time"},
            "callbacks": {"type": "object", "properties": {"success": {"type": ["string", "null"]},
                                                           "failed": {"type": ["string", "null"]},
                                                           "webhook": {"type": ["string", "null"]}}},
            "prog_url": {"type": ["string", "null"]},
            "result": {"type": ["array", "object", "null"], "description": "the driver's BIT result, one object per "
                                                                           "command (docs/result-format.md)"},
            "error": {"type": ["object", "null"]},
            "payload": _ref("Payload"),
            "links": {"type": "object", "required": ["self", "by_order"],
                      "properties": {"self": {"type": "string"}, "by_order": {"type": "string"}}},
        },
    },
    "ReceiptPage": {
        "type": "object", "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": _ref("Receipt")},
                       "next_cursor": {"type": ["string", "null"]}},
    },
    "Account": {
        "type": "object", "required": ["id", "name", "allowed_origins", "created_at"],
        "properties": {"id": _ID, "name": {"type": "string"},
                       "allowed_origins": {"type": "array", "items": {"type": "string"}},
                       "created_at": {"type": "string", "format": "date-time"}},
    },
    "Device": {
        "type": "object", "required": ["id", "account_id", "driver_id", "kind", "role", "name", "created_at"],
        "properties": {"id": _ID, "account_id": _ID, "driver_id": _ID,
                       "kind": {"type": "string", "enum": ["atol", "mercury", "arcus"]},
                       "role": {"type": "string", "enum": ["kkt", "bnk"]}, "name": {"type": "string"},
                       "created_at": {"type": "string", "format": "date-time"}},
    },
    "DeviceList": {"type": "object", "required": ["items"],
                   "properties": {"items": {"type": "array", "items": _ref("Device")}}},
    "Driver": {
        "type": "object", "required": ["id", "account_id", "name", "created_at", "devices"],
        "properties": {"id": _ID, "account_id": _ID, "name": {"type": "string"},
                       "created_at": {"type": "string", "format": "date-time"},
                       "devices": {"type": "array", "items": _ref("Device")}},
    },
    "DriverList": {"type": "object", "required": ["items"],
                   "properties": {"items": {"type": "array", "items": _ref("Driver")}}},
    "SignIn": {
        "type": "object", "required": ["login", "password"], "additionalProperties": False,
        "properties": {"login": {"type": "string", "minLength": 1, "maxLength": 64},
                       "password": {"type": "string", "minLength": 1, "maxLength": 256}},
    },
    "Session": {
        "type": "object", "required": ["login", "account_id", "csrf_token", "expires_at"],
        "properties": {"login": {"type": "string"}, "account_id": _ID,
                       "csrf_token": {"type": "string", "description": f"send it as {CSRF_HEADER} on changes"},
                       "expires_at": {"type": "string", "format": "date-time"}},
    },
    "CallbackTry": {
        "type": "object", "required": ["at", "status", "error", "durationMs"],
        "properties": {"at": {"type": "string", "format": "date-time"},
                       "status": {"type": ["integer", "null"], "description": "the receiver's HTTP status"},
                       "error": {"type": ["string", "null"]}, "durationMs": {"type": "integer", "minimum": 0}},
    },
    "Callback": {
        "type": "object",
        "required": ["id", "kind", "url", "state", "attempts", "nextAt", "deliveredAt", "lastError", "tries"],
        "properties": {"id": {"type": "integer", "minimum": 1},
                       "kind": {"type": "string", "enum": ["success", "failed", "webhook"]},
                       "url": {"type": "string"},
                       "state": {"type": "string", "enum": ["pending", "delivered", "gave_up", "refused"]},
                       "attempts": {"type": "integer", "minimum": 0}, "nextAt": _NULLABLE_TIME,
                       "deliveredAt": _NULLABLE_TIME, "lastError": {"type": ["string", "null"]},
                       "tries": {"type": "array", "items": _ref("CallbackTry")}},
    },
    "CallbackList": {"type": "object", "required": ["callbacks"],
                     "properties": {"callbacks": {"type": "array", "items": _ref("Callback")}}},
    "Resent": {"type": "object", "required": ["resent"],
               "properties": {"resent": {"type": "integer", "minimum": 0,
                                         "description": "how many callbacks are due again"}}},
    "SignedOut": {"type": "object", "required": ["signed_out"], "properties": {"signed_out": {"const": True}}},
}


def openapi_document(prefix: str = "/api/v1") -> dict[str, Any]:
    receipt_id = _path("receipt_id", {"type": "string", "format": "uuid"})
    page_params = [
        _query("state", {"type": "string", "pattern": "^(" + "|".join(s.value for s in State) + ")(,("
                         + "|".join(s.value for s in State) + "))*$"}, "states, comma-separated"),
        _query("order_id", {"type": "string", "minLength": 1, "maxLength": MAX_ORDER_ID}, "exactly this order id"),
        _query("device_id", _ID, "this device's receipts"),
        _query("driver_id", _ID, "this driver's receipts"),
        _query("created_from", {"type": "string", "format": "date-time"}, "created at or after"),
        _query("created_to", {"type": "string", "format": "date-time"}, "created before"),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50}, "page size"),
        _query("cursor", {"type": "string", "pattern": f"^[0-9]{{1,{CURSOR_DIGITS}}}$"},
               "next_cursor of the previous page"),
    ]
    secured = [{"signature": []}, {"session": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kktbridge cloud API", "version": __version__,
            "description": (
                "Receipts for 54-ФЗ registers, queued for the seller's driver. Sign each request: "
                f"{ACCOUNT_HEADER} (account id), {TIMESTAMP_HEADER} (Unix seconds) and {SIGNATURE_HEADER}: "
                "sha256=<hex HMAC-SHA256 of 'METHOD\\npath?query\\ntimestamp\\nbody' keyed with the account's API "
                f"secret>; or sign in (POST {prefix}/session) and send the session cookie, with {CSRF_HEADER} on "
                "changes. See docs/cloud.md."),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "signature": {"type": "apiKey", "in": "header", "name": SIGNATURE_HEADER,
                              "description": f"with {ACCOUNT_HEADER} and {TIMESTAMP_HEADER}"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
        },
        "paths": {
            f"{prefix}/receipts": {
                "post": {
                    "operationId": "submitReceipt", "summary": "Queue a receipt for a register",
                    "security": secured,
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY,
                                               "pattern": "^[\\x20-\\x7e]+$"},
                                    "description": "the same key and body give the same receipt"}],
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": _ref("SubmitReceipt")}}},
                    "responses": {**_ok("Receipt", "Queued now", "201"),
                                  **_ok("Receipt", "The same request again: the stored receipt"),
                                  **_errors(*_COMMON, 404, 409)},
                },
                "get": {
                    "operationId": "listReceipts", "summary": "The account's receipts, newest first",
                    "security": secured, "parameters": page_params,
                    "responses": {**_ok("ReceiptPage", "A page of receipts"), **_errors(*_COMMON)},
                },
            },
            f"{prefix}/courier/receipts": {
                "post": {
                    "operationId": "courierReceipt",
                    "summary": "Courier mode: a signed-in user queues a receipt for one of the account's registers",
                    "description": f"Session only (the cookie and {CSRF_HEADER}); a signed request is refused with "
                                   "403. The receipt goes through the same queue and link, with source `courier`.",
                    "security": [{"session": []}],
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": _ref("CourierReceipt")}}},
                    "responses": {**_ok("Receipt", "Queued now", "201"),
                                  **_ok("Receipt", "The same request again: the stored receipt"),
                                  **_errors(*_COMMON, 404, 409)},
                },
            },
            f"{prefix}/receipts/by-order/{{order_id}}": {
                "get": {
                    "operationId": "receiptByOrder", "summary": "A receipt by the shop's order id",
                    "security": secured,
                    "parameters": [_path("order_id", {"type": "string", "minLength": 1,
                                                      "maxLength": MAX_ORDER_ID})],
                    "responses": {**_ok("Receipt", "The receipt"), **_errors(*_COMMON, 404)},
                },
            },
            f"{prefix}/receipts/{{receipt_id}}": {
                "get": {
                    "operationId": "receipt", "summary": "A receipt by its id", "security": secured,
                    "parameters": [receipt_id, _query("wait", {"type": "integer", "minimum": 0, "maximum": MAX_WAIT},
                                                      "seconds to wait for the receipt to finish")],
                    "responses": {**_ok("Receipt", "The receipt"), **_errors(*_COMMON, 404)},
                },
            },
            f"{prefix}/receipts/{{receipt_id}}/callbacks": {
                "get": {
                    "operationId": "receiptCallbacks", "summary": "The receipt's callbacks and every attempt",
                    "security": secured, "parameters": [receipt_id],
                    "responses": {**_ok("CallbackList", "The callbacks, oldest first"), **_errors(*_COMMON, 404)},
                },
            },
            f"{prefix}/receipts/{{receipt_id}}/callbacks/resend": {
                "post": {
                    "operationId": "resendCallbacks", "summary": "Post the receipt's callbacks again, due now",
                    "security": secured, "parameters": [receipt_id],
                    "responses": {**_ok("Resent", "How many are due again"), **_errors(*_COMMON, 404)},
                },
            },
            f"{prefix}/account": {
                "get": {"operationId": "account", "summary": "The account", "security": secured,
                        "responses": {**_ok("Account", "The account"), **_errors(*_COMMON, 404)}},
            },
            f"{prefix}/drivers": {
                "get": {"operationId": "drivers", "summary": "The account's drivers with their devices",
                        "security": secured,
                        "responses": {**_ok("DriverList", "Drivers"), **_errors(*_COMMON)}},
            },
            f"{prefix}/drivers/{{driver_id}}": {
                "get": {"operationId": "driver", "summary": "A driver with its devices", "security": secured,
                        "parameters": [_path("driver_id", _ID)],
                        "responses": {**_ok("Driver", "The driver"), **_errors(*_COMMON, 404)}},
            },
            f"{prefix}/devices": {
                "get": {"operationId": "devices", "summary": "The account's devices", "security": secured,
                        "responses": {**_ok("DeviceList", "Devices"), **_errors(*_COMMON)}},
            },
            f"{prefix}/devices/{{device_id}}": {
                "get": {"operationId": "device", "summary": "A device", "security": secured,
                        "parameters": [_path("device_id", _ID)],
                        "responses": {**_ok("Device", "The device"), **_errors(*_COMMON, 404)}},
            },
            f"{prefix}/session": {
                "post": {
                    "operationId": "signIn", "summary": "Sign in: sets the session cookie", "security": [],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("SignIn")}}},
                    "responses": {**_ok("Session", "Signed in; the cookie is set"), **_errors(*_COMMON)},
                },
                "get": {"operationId": "session", "summary": "The current session", "security": secured,
                        "responses": {**_ok("Session", "The session"), **_errors(*_COMMON, 404)}},
                "delete": {"operationId": "signOut", "summary": "Sign out: ends the session", "security": secured,
                           "responses": {**_ok("SignedOut", "Signed out"), **_errors(*_COMMON, 404)}},
            },
        },
    }
