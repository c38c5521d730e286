"""Test doubles, kept out of the Lambda layer. Only the queue is faked (and telemetry recorded):
every store is real."""
