"""Prometheus: the metric catalogue as prometheus-client collectors (`telemetry`), and scheduled
job results pushed to a Pushgateway (`pushgateway`, standard library only)."""
