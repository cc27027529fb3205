"""Small rules of the cloud, checked alone: the receipt state machine, flood buckets, decodeURIComponent."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kktbridge.cloud import ratelimit
from kktbridge.cloud.intake import decode_uri_component
from kktbridge.cloud.states import FINAL, TRANSITIONS, IllegalTransition, State, can_move, sources, stamp_column


def test_the_state_machine_is_the_issues_and_final_states_are_final():
    assert set(TRANSITIONS) == {
        (State.QUEUED, State.DELIVERED), (State.QUEUED, State.EXPIRED), (State.DELIVERED, State.DONE),
        (State.DELIVERED, State.FAILED), (State.DELIVERED, State.UNKNOWN), (State.UNKNOWN, State.DONE),
        (State.UNKNOWN, State.FAILED)}
    assert not any(can_move(final, target) for final in FINAL for target in State)
    assert not can_move(State.UNKNOWN, State.DELIVERED)  # a receipt in doubt is never sent again blindly
    assert sources(State.DONE) == (State.DELIVERED, State.UNKNOWN)
    assert {stamp_column(s) for s in (State.DONE, State.FAILED, State.EXPIRED)} == {"finished_at"}
    assert [s.status for s in State] == ["wait", "wait", "done", "fail", "wait", "fail"]
    with pytest.raises(IllegalTransition):
        sources(State.QUEUED)


def test_a_bucket_allows_a_burst_then_refills_evenly(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    limiter = ratelimit.Limiter("3/minute")
    assert [limiter.hit("k") for _ in range(4)] == [None, None, None, 20]  # one more in 60 s / 3
    assert limiter.hit("other") is None and limiter.blocked("k") == 20
    clock[0] += 19.9
    assert limiter.hit("k") == 1
    clock[0] += 0.2
    assert limiter.hit("k") is None and limiter.hit("k") == 20
    clock[0] += 600
    assert [limiter.hit("k") for _ in range(4)] == [None, None, None, 20]  # full again, never more than full


@given(st.text())
def test_decode_uri_component_is_urllibs_unquote_for_what_encode_uri_component_writes(text):
    encoded = quote(text, safe="-_.!~*'()")
    assert decode_uri_component(encoded) == text


@given(st.text(alphabet="%0123456789abcdefABCDEF=~ xё", max_size=12))
def test_decode_uri_component_agrees_with_urllib_on_any_percent_soup(text):
    try:
        expected = unquote(text, errors="strict")
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            decode_uri_component(text)
    else:
        assert decode_uri_component(text) == expected
