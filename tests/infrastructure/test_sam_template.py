"""template.yaml: valid for AWS (sam validate --lint) and in step with the code it deploys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import deploy

ROOT = Path(__file__).resolve().parents[2]

API_FUNCTIONS = {
    "SocialIntegration": "users",
    "PostsIntegration": "posts",
    "FeedIntegration": "feed",
}
SCHEDULED = (
    "PrewarmFunction",
    "RollupFunction",
    "CleanupFunction",
    "RepairFunction",
    "ImpressionsFunction",
)


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as {"Tag": value}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)


def test_sam_validate_lint_passes():
    deploy.validate()


def _app_routes(router_module: str) -> set[str]:
    import importlib

    router = importlib.import_module(f"feed_api.routers.{router_module}").router
    return {f"{m} {r.path}" for r in router.routes for m in r.methods}


def test_every_route_of_each_function_is_declared_with_the_jwt_authorizer(template):
    declared: dict[str, set[str]] = {name: set() for name in API_FUNCTIONS}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        props = resource["Properties"]
        assert props["AuthorizationType"] == "JWT", props["RouteKey"]
        assert props["AuthorizerId"] == {"Ref": "JwtAuthorizer"}
        integration = props["Target"]["Sub"].removeprefix("integrations/${").rstrip("}")
        declared[integration].add(props["RouteKey"])
    for integration, router in API_FUNCTIONS.items():
        assert declared[integration] == _app_routes(router), integration


def test_fanout_reads_the_queue_with_partial_batch_failures(template):
    events = template["Resources"]["FanoutFunction"]["Properties"]["Events"]
    sqs = next(e["Properties"] for e in events.values() if e["Type"] == "SQS")
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert {"BatchSize", "MaximumBatchingWindowInSeconds"} <= set(sqs)
    queue = template["Resources"]["FanoutQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "FanoutDeadLetterQueue.Arn"}


def test_scheduled_functions_have_a_schedule_and_a_function_folder(template):
    for name in SCHEDULED:
        props = template["Resources"][name]["Properties"]
        kinds = {e["Type"] for e in props["Events"].values()}
        assert kinds == {"Schedule"}, name
        assert (ROOT / props["CodeUri"] / "app.py").exists(), name
