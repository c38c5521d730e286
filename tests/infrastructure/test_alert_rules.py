"""infra/monitoring/alerts.yml: valid for Prometheus, unit-tested, and in step with the metrics.

`promtool` is Debian's prometheus package, which `make up` and `make test` install; these tests
fail (never skip) without it, so a machine that cannot check the rules does not pass them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsfeed.telemetry import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "infra" / "monitoring"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts.test.yml"

SEVERITIES = {"critical", "warning"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
# A metric of ours: feed_ and a name; quoted label values are blanked out first.
_FEED_NAME = re.compile(r"\bfeed_[a-z0-9_]+")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


def _promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail(
            "promtool is not on PATH: it comes with Debian's prometheus package, which "
            "`make up` and `make test` install (apt-get install prometheus)."
        )
    return exe


def _run_promtool(*args: str) -> None:
    proc = subprocess.run(
        [_promtool(), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"promtool {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )


def test_promtool_check_rules_passes():
    _run_promtool("check", "rules", str(RULES.relative_to(ROOT)))


def test_promtool_rule_unit_tests_pass():
    _run_promtool("test", "rules", str(RULE_TESTS.relative_to(ROOT)))


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def alerts(rules) -> list[dict[str, Any]]:
    found = [rule for rule in rules if "alert" in rule]
    assert found, "no alerting rules in alerts.yml"
    return found


def test_every_alert_has_for_a_severity_and_a_runbook_description(alerts):
    for alert in alerts:
        name = alert["alert"]
        assert alert.get("for") not in (None, "0s", "0m", "0"), f"{name}: no `for:`"
        assert alert.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity"
        annotations = alert.get("annotations", {})
        assert annotations.get("summary", "").strip(), f"{name}: no summary"
        assert "check" in annotations.get("description", "").lower(), (
            f"{name}: the description should say what to check"
        )


def test_the_issue_s_alerts_are_there(alerts):
    expressions = {alert["alert"]: alert["expr"] for alert in alerts}
    wanted = {
        "FeedFanoutLagHigh": "feed_fanout_lag_seconds_bucket",
        "FeedDeadLetterQueueNotEmpty": 'queue="dlq"',
        "FeedApiErrorRatioHigh": 'status=~"5.."',
        "FeedFanoutQueueMessageOld": "feed_queue_oldest_message_age_seconds",
        "FeedRedisMemoryHigh": "redis_memory_max_bytes",
        "FeedTargetDown": "up",
        "FeedScheduledJobNotSucceeding": "feed_job_last_success_timestamp_seconds",
    }
    for name, fragment in wanted.items():
        assert name in expressions, name
        assert fragment in expressions[name], name


def _feed_metric_names(text: str) -> set[str]:
    return set(_FEED_NAME.findall(_QUOTED.sub('""', text)))


def _catalogue_name(used: str) -> str | None:
    """The catalogue metric a series name belongs to (a histogram's _bucket, _count, _sum)."""
    kinds = {metric.name: metric.kind for metric in CATALOGUE}
    if used in kinds:
        return used
    for suffix in HISTOGRAM_SUFFIXES:
        base = used.removesuffix(suffix)
        if base != used and kinds.get(base) == "histogram":
            return base
    return None


def test_every_feed_metric_in_the_rules_is_in_the_catalogue(rules):
    """A renamed metric must not leave an alert that silently never fires."""
    used: set[str] = set()
    for rule in rules:
        used |= _feed_metric_names(rule["expr"])
        for text in rule.get("annotations", {}).values():
            used |= _feed_metric_names(text)
    # The extraction itself works: these are certainly used.
    assert {"feed_fanout_lag_seconds_bucket", "feed_queue_messages"} <= used
    unknown = sorted(name for name in used if _catalogue_name(name) is None)
    assert not unknown, f"not in newsfeed.telemetry.CATALOGUE: {unknown}"


def test_every_alert_has_a_firing_and_a_quiet_unit_test(alerts):
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in alerts:
        name = alert["alert"]
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case.get("exp_alerts") for case in mine), f"{name}: no firing case"
        assert any(not case.get("exp_alerts") for case in mine), f"{name}: no quiet case"


def test_the_rendered_prometheus_configuration_passes_promtool(tmp_path: Path) -> None:
    # What `make up` writes (infra/devstack.py renders prometheus.yml.tmpl), checked with the
    # rule file it names.
    from feed_wiring.settings import Settings
    from infra.devstack import Layout, Prometheus

    config = Prometheus(Settings(), Layout(tmp_path)).config()
    text = config.read_text()
    settings_lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in settings_lines if "${" in line]
    assert str(RULES) in text
    result = subprocess.run(
        [_promtool(), "check", "config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {c["job_name"] for c in yaml.safe_load(text)["scrape_configs"]}
    assert jobs == {
        "prometheus",
        "feed-api",
        "fanout-worker",
        "pushgateway",
        "redis",
        "postgres",
        "ferretdb",
    }
