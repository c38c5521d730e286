"""Amazon SQS: the fan-out queue."""
