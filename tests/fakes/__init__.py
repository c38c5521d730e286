"""Test doubles, kept out of the Lambda layer. Only the queue is faked: every store is real."""
