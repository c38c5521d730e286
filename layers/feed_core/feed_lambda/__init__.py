"""What the Lambda runtime needs: Powertools observability and one handler factory per kind of
function (HTTP API, SQS fan-out, scheduled job)."""
