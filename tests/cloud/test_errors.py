"""The cloud's refusals in both answer shapes: each problem named once, whether or not the headline names it."""

from __future__ import annotations

from kktbridge.cloud.errors import bad_request, form_error_body, json_error_body, unauthorized
from kktbridge.fiscal import FieldError


def test_each_problem_is_named_once_in_the_vendor_shape_and_every_one_is_in_the_json_shape():
    token = FieldError("BIT_KKT_TOKEN", "unknown_token", "нет кассы с таким токеном", "no register with this token")
    price = FieldError("data.purchases[0].price_1079", "bad_value", "цена не число", "the price is not a number")
    for error in (bad_request([token]), bad_request([token, price]),
                  unauthorized("BIT_DATAINTEGRITY_CODE", "bad_signature", "подпись неверна", "wrong signature")):
        body = form_error_body(error)
        for field in error.fields:
            assert body["errorRu"].count(f"{field.path}: {field.ru}") == 1, body
            assert body["errorEn"].count(f"{field.path}: {field.en}") == 1, body
            assert body["error"].count(field.ru) == 1 and body["error"].count(field.en) == 1, body
        assert [f["path"] for f in json_error_body(error)["error"]["fields"]] == [f.path for f in error.fields]
    assert form_error_body(bad_request([token, price]))["errorRu"] == (
        "запрос отклонён: BIT_KKT_TOKEN: нет кассы с таким токеном; data.purchases[0].price_1079: цена не число")
