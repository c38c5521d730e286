from __future__ import annotations

import threading

import pytest

from newsfeed.errors import InvalidInput
from newsfeed.ids import (
    EPOCH_MS,
    ID_WIDTH,
    MAX_SEQUENCE,
    IdGenerator,
    id_to_datetime,
    id_to_ms,
    lowest_id_at,
    parse_id,
    to_member,
)


def test_ids_carry_time_and_worker() -> None:
    gen = IdGenerator(worker_id=7, clock_ms=lambda: EPOCH_MS + 1234)
    first = gen.next_id()
    assert id_to_ms(first) == EPOCH_MS + 1234
    assert (first >> 12) & 0x3FF == 7
    assert id_to_datetime(first).year == 2025
    assert lowest_id_at(EPOCH_MS + 1234) <= first < lowest_id_at(EPOCH_MS + 1235)


def test_ids_strictly_increase_within_one_millisecond_and_past_sequence_exhaustion() -> None:
    gen = IdGenerator(worker_id=1, clock_ms=lambda: EPOCH_MS + 10)
    ids = [gen.next_id() for _ in range(MAX_SEQUENCE + 10)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Borrowed the next millisecond instead of wrapping the sequence.
    assert id_to_ms(ids[-1]) == EPOCH_MS + 11


def test_clock_stepping_back_never_reuses_an_id() -> None:
    times = iter([EPOCH_MS + 100, EPOCH_MS + 50, EPOCH_MS + 50, EPOCH_MS + 101])
    gen = IdGenerator(worker_id=3, clock_ms=lambda: next(times))
    ids = [gen.next_id() for _ in range(4)]
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_unique_across_threads() -> None:
    gen = IdGenerator(worker_id=2)
    out: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [gen.next_id() for _ in range(2000)]
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 8000


def test_real_clock_ids_fit_in_63_bits() -> None:
    value = IdGenerator().next_id()
    assert 0 < value < 2**63


def test_worker_id_is_validated() -> None:
    with pytest.raises(ValueError):
        IdGenerator(worker_id=1024)


def test_member_encoding_sorts_like_numbers() -> None:
    values = [5, 10**17, 10**18 - 1, 10**18, 2**63 - 1, 123456789012345678]
    members = [to_member(v) for v in values]
    assert all(len(m) == ID_WIDTH for m in members)
    assert sorted(members) == [to_member(v) for v in sorted(values)]
    assert [int(m) for m in members] == values


@pytest.mark.parametrize(
    "raw", ["", "abc", "-1", "0", "1" * 20, "١٢٣", 1.5, None, True, str(2**63)]
)
def test_parse_id_refuses_garbage(raw: object) -> None:
    with pytest.raises(InvalidInput):
        parse_id(raw)  # type: ignore[arg-type]


def test_parse_id_accepts_decimal_strings() -> None:
    assert parse_id("123456789012345678") == 123456789012345678
    assert parse_id(42) == 42
