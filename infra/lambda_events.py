"""Lambda-shaped inputs: HTTP API payload 2.0 events, SQS events, a context, and a caller that
hands them to a function's handler the way API Gateway would.

Plain helpers (no fixtures), used by the API tests (tests/integration/api) and the benchmarks.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import urlencode


class LambdaContext:
    """The attributes of the Lambda context object that Powertools and Mangum read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/25/[$LATEST]test"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


@dataclasses.dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error(self) -> dict[str, str]:
        body = self.json()
        assert set(body) == {"error"}, body
        return body["error"]


def http_event(
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    query: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as the `$default` stage sends it."""
    request_id = uuid.uuid4().hex[:16]
    all_headers = {
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "user-agent": "pytest",
        "x-forwarded-proto": "https",
        "x-forwarded-port": "443",
        "x-amzn-trace-id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
    }
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    if body is not None:
        all_headers["content-type"] = "application/json"
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    query = {k: str(v) for k, v in (query or {}).items()}
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": urlencode(query),
        "headers": all_headers,
        **({"queryStringParameters": query} if query else {}),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "pytest",
            },
            "requestId": request_id,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        **({"body": json.dumps(body)} if body is not None else {}),
        "isBase64Encoded": False,
    }


class LambdaApi:
    """Calls one function's `handler(event, context)` the way API Gateway would."""

    def __init__(self, module: ModuleType, name: str, token_for: Callable[..., str]) -> None:
        self.module = module
        self.name = name
        self.token_for = token_for

    def call(
        self,
        method: str,
        path: str,
        *,
        sub: str | None = None,
        token: str | None = None,
        **kwargs: Any,
    ) -> ApiResponse:
        if sub is not None:
            token = self.token_for(sub)
        event = http_event(method, path, token=token, **kwargs)
        result = self.module.handler(event, LambdaContext(self.name))
        assert not result.get("isBase64Encoded"), "JSON responses must not be base64-encoded"
        return ApiResponse(
            status=result["statusCode"],
            headers={k.lower(): v for k, v in (result.get("headers") or {}).items()},
            text=result.get("body") or "",
        )


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    """An SQS event as the event source mapping delivers it (one record per body)."""
    records = []
    for body in bodies:
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:feed-fanout",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def new_subject() -> str:
    return f"test|{uuid.uuid4().hex}"


def new_handle() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


def s3_event(bucket: str, keys: list[str], size: int = 0) -> dict[str, Any]:
    """S3's ObjectCreated notification as Lambda receives it (keys URL-encoded, as S3 sends)."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Post",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": size},
                },
            }
            for key in keys
        ]
    }
