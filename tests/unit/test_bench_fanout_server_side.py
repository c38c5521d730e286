"""bench/fanout_rate.py: the server-side figures count inserts, not script calls (one EVALSHA of
the batch push script writes up to PUSH_BATCH timelines)."""

from __future__ import annotations

from bench.fanout_rate import server_side


def test_server_time_bound_is_inserts_not_calls() -> None:
    # Issue 11's numbers: 459 EVALSHA calls of 5,251 us each for 89,991 inserts.
    calls, inserts = 459, 89_991
    usec = calls * 5_251
    out = server_side(calls, usec, inserts)
    assert out["evalsha_calls"] == calls
    assert out["usec_per_call"] == 5_251
    assert out["inserts_per_s_of_server_time"] == round(1e6 * inserts / usec)  # 37,337
    assert 37_000 < out["inserts_per_s_of_server_time"] < 38_000
    assert out["usec_per_insert"] == round(usec / inserts, 2)  # ~26.8 us
    assert out["inserts_per_call"] == round(inserts / calls, 1)
    # No figure divides calls by server time under an insert-rate name.
    assert "max_inserts_per_s_by_server_time" not in out


def test_no_calls_no_division() -> None:
    out = server_side(0, 0, 0)
    assert out["usec_per_call"] is None
    assert out["usec_per_insert"] is None
    assert out["inserts_per_s_of_server_time"] is None
