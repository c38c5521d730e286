"""bench/feed_read.py judges each read target at the level issue 11 names: p99s at the handler
(through the Lambda handler with a real event), the p50 goal at the domain, the speed-up over the
pull-only baselines domain against baseline (both in-process)."""

from __future__ import annotations

from bench.feed_read import TARGETS, headline, judge, speedups


def _dist(p50: float, p99: float) -> dict[str, float]:
    return {"n": 100, "p50_ms": p50, "p99_ms": p99}


def _row(domain: tuple[float, float], handler: tuple[float, float], pull=(30.0, 60.0)) -> dict:
    row = {"domain": _dist(*domain), "handler": _dist(*handler), "pull_redis": _dist(*pull)}
    row["pull_mongo"] = {"n": 0}
    row.update(speedups(row))
    return row


GROUPS = {
    # Domain well within every latency goal, the handler not: the verdicts must follow the handler.
    "0celeb_50pushed": _row((0.8, 2.0), (2.5, 5.0)),
    "0celeb_500pushed": _row((0.9, 2.5), (2.8, 2.9)),
    "5celeb_500pushed": _row((0.9, 2.0), (3.0, 4.0), pull=(20.0, 40.0)),
    "20celeb_500pushed": _row((1.5, 3.0), (4.0, 7.5)),
}


def _by_name() -> dict[str, dict]:
    return {t["target"]: t for t in judge(GROUPS)}


def test_read_p99_targets_are_judged_at_the_handler() -> None:
    t = _by_name()
    pushed = t["p99_ms_pushed_only"]
    assert pushed["level"] == "handler"
    assert pushed["per_group"] == {"0celeb_50pushed": 5.0, "0celeb_500pushed": 2.9}
    assert pushed["worst"] == 5.0 and pushed["met"] is False  # domain p99s (2.0, 2.5) would pass
    celebs = t["p99_ms_20_celebrities_500_pushed"]
    assert celebs["level"] == "handler" and celebs["worst"] == 7.5 and celebs["met"] is False


def test_domain_p50_and_speedups_are_labelled_domain() -> None:
    t = _by_name()
    p50 = t["p50_ms"]
    assert p50["level"] == "domain" and set(p50["per_group"]) == set(GROUPS)
    assert p50["worst"] == 1.5 and p50["met"] is False
    for stat in ("p50", "p99"):
        s = t[f"speedup_{stat}_vs_pull_redis_500_pushed"]
        assert s["level"] == "domain"
        assert s["statistic"] == f"speedup_{stat}_domain_vs_pull_redis"
        assert "0celeb_50pushed" not in s["per_group"]  # the 500-author readers only
    s50 = t["speedup_p50_vs_pull_redis_500_pushed"]
    assert s50["worst"] == round(30.0 / 1.5, 2) and s50["met"] is True  # 20 celebrities
    s99 = t["speedup_p99_vs_pull_redis_500_pushed"]
    assert s99["worst"] == round(40.0 / 2.0, 2) and s99["met"] is True  # 5 celebrities


def test_headline_is_the_handler() -> None:
    h = headline(GROUPS)
    assert h["level"] == "handler"
    assert h["p99_ms"]["0celeb_50pushed"] == 5.0
    assert h["p50_ms"]["20celeb_500pushed"] == 4.0


def test_every_target_names_its_level_and_missing_groups_are_not_judged() -> None:
    assert {level for _, level, *_ in TARGETS} == {"handler", "domain"}
    t = {x["target"]: x for x in judge({"0celeb_50pushed": GROUPS["0celeb_50pushed"]})}
    assert t["p99_ms_20_celebrities_500_pushed"]["met"] is None
    assert t["p99_ms_pushed_only"]["per_group"] == {"0celeb_50pushed": 5.0}
