"""template.yaml: valid for AWS (sam validate --lint) and in step with the code it deploys."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import deploy

ROOT = Path(__file__).resolve().parents[2]

# Integration -> the routers its function serves (functions/<name>/app.py).
API_FUNCTIONS = {
    "SocialIntegration": ("users",),
    "PostsIntegration": ("posts", "media"),
    "FeedIntegration": ("feed",),
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
    for integration, routers in API_FUNCTIONS.items():
        served = set().union(*(_app_routes(r) for r in routers))
        assert declared[integration] == served, integration


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


# -- alarms and the dashboard ------------------------------------------------------------------

NOTIFY = {"If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
# What each alarm watches: the issue's fan-out lag p99, DLQ depth above 0, 5xx rate, queue age.
ALARMS: dict[str, dict[str, Any]] = {
    "FanoutDeadLetterAlarm": {
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [
            {"Name": "QueueName", "Value": {"GetAtt": "FanoutDeadLetterQueue.QueueName"}}
        ],
        "Statistic": "Maximum",
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    },
    "FanoutLagAlarm": {
        "Namespace": {"Sub": "FeedPlatform/${Stage}"},
        "MetricName": "feed_fanout_lag_seconds",
        "Dimensions": [{"Name": "service", "Value": "fanout"}],
        "ExtendedStatistic": "p99",
        "Threshold": 60,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    },
    "FanoutQueueAgeAlarm": {
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateAgeOfOldestMessage",
        "Dimensions": [{"Name": "QueueName", "Value": {"GetAtt": "FanoutQueue.QueueName"}}],
        "Statistic": "Maximum",
        "Threshold": 300,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    },
    "Api5xxAlarm": {
        "Threshold": 0.05,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    },
}


def _resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _emf_namespace(template: dict[str, Any]) -> Any:
    return template["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]


def _catalogue() -> dict[str, Any]:
    from newsfeed.telemetry import CATALOGUE

    return {metric.name: metric for metric in CATALOGUE}


def _assert_emf_metric(name: str, dimensions: set[str], where: str) -> None:
    """An EMF metric is a catalogue metric, with its labels and `service` as dimensions."""
    catalogue = _catalogue()
    assert name in catalogue, f"{where}: {name} is not in newsfeed.telemetry.CATALOGUE"
    assert dimensions == {*catalogue[name].labels, "service"}, f"{where}: {name} {dimensions}"


def test_the_alarms_watch_the_issue_s_signals(template):
    alarms = _resources_of(template, "AWS::CloudWatch::Alarm")
    assert set(ALARMS) <= set(alarms)
    for name, expected in ALARMS.items():
        props = alarms[name]["Properties"]
        for key, value in expected.items():
            assert props.get(key) == value, f"{name}.{key}: {props.get(key)!r}"
    assert _emf_namespace(template) == ALARMS["FanoutLagAlarm"]["Namespace"]


def test_the_5xx_alarm_divides_5xx_by_requests_of_the_http_api_with_a_guard(template):
    props = template["Resources"]["Api5xxAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in props["Metrics"]}
    for metric_id, metric_name in (("errors", "5xx"), ("requests", "Count")):
        stat = metrics[metric_id]["MetricStat"]
        assert stat["Metric"]["Namespace"] == "AWS/ApiGateway"
        assert stat["Metric"]["MetricName"] == metric_name
        assert stat["Metric"]["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]
        assert stat["Stat"] == "Sum"
        assert metrics[metric_id]["ReturnData"] is False
    returned = [m for m in props["Metrics"] if m.get("ReturnData", True)]
    assert len(returned) == 1
    expression = returned[0]["Expression"].replace(" ", "")
    assert expression.startswith("IF(requests>0,"), expression
    assert "errors,0)/requests" in expression, expression


def test_every_alarm_notifies_on_alarm_and_recovery_and_chooses_missing_data(template):
    for name, alarm in _resources_of(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        assert props.get("AlarmActions") == NOTIFY, name
        assert props.get("OKActions") == NOTIFY, name
        assert props.get("TreatMissingData") in {"notBreaching", "breaching", "ignore", "missing"}
        assert props.get("AlarmDescription"), name


def test_emf_metrics_of_the_alarms_are_in_the_catalogue(template):
    namespace = _emf_namespace(template)
    for name, alarm in _resources_of(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        stats = [props] + [
            m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m
        ]
        for metric in stats:
            if metric.get("Namespace") == namespace:
                dims = {d["Name"] for d in metric.get("Dimensions", [])}
                _assert_emf_metric(metric["MetricName"], dims, name)


_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")


def _substitute(text: str) -> str:
    """What !Sub makes of text, with <Name> for each variable (${!x} is a literal ${x})."""
    return _SUB_VARIABLE.sub(lambda m: "${" + m[2] + "}" if m[1] else f"<{m[2]}>", text)


@pytest.fixture(scope="module")
def dashboard(template) -> dict[str, Any]:
    (resource,) = _resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = resource["Properties"]["DashboardBody"]["Sub"]
    for literal, variable in _SUB_VARIABLE.findall(body):
        if literal:
            continue
        resource_name = variable.split(".")[0]
        assert (
            variable.startswith("AWS::")
            or variable in template["Parameters"]
            or resource_name in template["Resources"]
        ), f"the dashboard's ${{{variable}}} is no parameter, resource or pseudo parameter"
    return json.loads(_substitute(body))


def _widget_metrics(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict]]:
    """(namespace, name, dimensions, options) of a metric widget's plain metrics ("." repeats
    the previous entry's field)."""
    found: list[tuple[str, str, dict[str, str], dict]] = []
    previous: list[Any] = []
    for entry in widget["properties"]["metrics"]:
        if len(entry) == 1 and isinstance(entry[0], dict):
            continue  # an expression: _widget_searches
        options = entry[-1] if isinstance(entry[-1], dict) else {}
        fields = entry[:-1] if options else entry
        fields = [previous[i] if f == "." else f for i, f in enumerate(fields)]
        previous = fields
        namespace, name, *dims = fields
        found.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True)), options))
    return found


_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s*(.*?)'\s*,")
_SEARCH_TERM = re.compile(r'(\w+)="([^"]*)"')


def _widget_searches(widget: dict[str, Any]) -> list[tuple[str, set[str], dict[str, str]]]:
    """(namespace, dimension schema, exact terms) of the widget's SEARCH expressions."""
    found = []
    for entry in widget["properties"]["metrics"]:
        if len(entry) == 1 and isinstance(entry[0], dict) and "expression" in entry[0]:
            for schema, terms in _SEARCH.findall(entry[0]["expression"]):
                namespace, *dims = schema.split(",")
                found.append((namespace, set(dims), dict(_SEARCH_TERM.findall(terms))))
    return found


def _widget(dashboard: dict[str, Any], title_start: str) -> dict[str, Any]:
    (widget,) = [
        w for w in dashboard["widgets"] if w["properties"]["title"].startswith(title_start)
    ]
    return widget


def test_the_dashboard_is_json_with_a_widget_per_signal(dashboard):
    titles = [w["properties"]["title"] for w in dashboard["widgets"]]
    for start in (
        "API requests",
        "API latency",
        "Feed read duration",
        "Fan-out lag",
        "Fan-out jobs",
        "Fan-out queue",
        "Fan-out dead-letter queue",
        "Lambda errors",
        "Lambda duration",
        "Lambda throttles",
        "Scheduled job duration",
    ):
        assert sum(t.startswith(start) for t in titles) == 1, start
    for widget in dashboard["widgets"]:
        assert widget["type"] == "metric"
        assert widget["properties"]["region"] == "<AWS::Region>"
        assert {"x", "y", "width", "height"} <= set(widget)


def test_every_emf_metric_on_the_dashboard_is_in_the_catalogue(template, dashboard):
    namespace = _substitute(_emf_namespace(template)["Sub"])
    seen = set()
    for widget in dashboard["widgets"]:
        title = widget["properties"]["title"]
        for ns, name, dims, _ in _widget_metrics(widget):
            if ns == namespace:
                _assert_emf_metric(name, set(dims), title)
                seen.add(name)
        for ns, dims, terms in _widget_searches(widget):
            assert ns == namespace, title
            _assert_emf_metric(terms["MetricName"], dims, title)
            seen.add(terms["MetricName"])
    assert seen == {
        "feed_read_duration_seconds",
        "feed_fanout_lag_seconds",
        "feed_fanout_jobs_total",
        "feed_job_duration_seconds",
    }


def test_the_dashboard_s_widgets_show_what_their_titles_say(template, dashboard):
    reads = _widget_metrics(_widget(dashboard, "Feed read duration"))
    assert {(d["outcome"], o["stat"]) for _, _, d, o in reads} == {
        (outcome, stat)
        for outcome in ("cached", "rebuilt", "lazy", "partial")
        for stat in ("p50", "p99")
    }
    assert {d["service"] for _, _, d, _ in reads} == {"feed"}

    lag = _widget_metrics(_widget(dashboard, "Fan-out lag"))
    assert ("p99", {"service": "fanout"}) in [(o["stat"], d) for _, _, d, o in lag]

    jobs = _widget_searches(_widget(dashboard, "Fan-out jobs"))
    assert {t["outcome"] for _, _, t in jobs} == {"done", "failed"}
    assert {t["service"] for _, _, t in jobs} == {"fanout"}

    api = _widget_metrics(_widget(dashboard, "API requests")) + _widget_metrics(
        _widget(dashboard, "API latency")
    )
    assert {n for ns, n, d, _ in api if ns == "AWS/ApiGateway" and d == {"ApiId": "<HttpApi>"}} >= {
        "Count",
        "5xx",
        "Latency",
    }

    queue = _widget_metrics(_widget(dashboard, "Fan-out queue"))
    assert {d["QueueName"] for _, _, d, _ in queue} == {"<FanoutQueue.QueueName>"}
    assert "ApproximateAgeOfOldestMessage" in {n for _, n, _, _ in queue}
    dlq = _widget_metrics(_widget(dashboard, "Fan-out dead-letter queue"))
    assert {d["QueueName"] for _, _, d, _ in dlq} == {"<FanoutDeadLetterQueue.QueueName>"}

    functions = {f"<{name}>" for name in _resources_of(template, "AWS::Serverless::Function")}
    for title, metric in (
        ("Lambda errors", "Errors"),
        ("Lambda duration", "Duration"),
        ("Lambda throttles", "Throttles"),
    ):
        lambdas = _widget_metrics(_widget(dashboard, title))
        assert {(ns, n) for ns, n, _, _ in lambdas} == {("AWS/Lambda", metric)}, title
        assert {d["FunctionName"] for _, _, d, _ in lambdas} == functions, title

    services = {
        template["Resources"][name]["Properties"]["Environment"]["Variables"][
            "POWERTOOLS_SERVICE_NAME"
        ]
        for name in SCHEDULED
    }
    durations = _widget_metrics(_widget(dashboard, "Scheduled job duration"))
    assert {(d["job"], d["service"]) for _, _, d, _ in durations} == {(s, s) for s in services}


# -- the stores the stack can create, and what the functions get -------------------------------
# A small evaluator of the template's conditions and values for given parameters: a Ref to a
# parameter is its value (an SSM-typed one stays its SSM name), a Ref or GetAtt of a resource is
# "<Name>" or "<Name.Attribute>", AWS::NoValue drops the key or item.

_NO_VALUE = object()
STORE_TYPES = ("AWS::ElastiCache::", "AWS::RDS::")
STORE_VARIABLES = ("POSTGRES_", "REDIS_")


def _parameters(template: dict[str, Any], **given: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template["Parameters"].items():
        value = str(given.get(name, spec.get("Default", "")))
        values[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
    unknown = set(given) - set(values)
    assert not unknown, f"not template parameters: {unknown}"
    return values


def _conditions(template: dict[str, Any], params: dict[str, Any]) -> dict[str, bool]:
    done: dict[str, bool] = {}

    def condition(name: str) -> bool:
        if name not in done:
            done[name] = _eval(template["Conditions"][name], params, condition)
        return done[name]

    for name in template["Conditions"]:
        condition(name)
    return done


def _eval(node: Any, params: dict[str, Any], condition) -> Any:
    if isinstance(node, list):
        items = [_eval(item, params, condition) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((fn, arg),) = node.items()
        fn = fn.removeprefix("Fn::")
        if fn == "Ref":
            if arg == "AWS::NoValue":
                return _NO_VALUE
            return params.get(arg, f"<{arg}>")
        if fn == "GetAtt":
            return f"<{arg if isinstance(arg, str) else '.'.join(arg)}>"
        if fn == "Condition":
            return condition(arg)
        if fn == "If":
            name, when_true, when_false = arg
            return _eval(when_true if condition(name) else when_false, params, condition)
        values = _eval(arg, params, condition)
        if fn == "Not":
            return not values[0]
        if fn == "And":
            return all(values)
        if fn == "Or":
            return any(values)
        if fn == "Equals":
            return values[0] == values[1]
        if fn == "EachMemberEquals":
            return all(member == values[1] for member in values[0])
        if fn == "Join":
            return values[0].join(values[1])
        if fn == "Sub" and isinstance(values, str):
            return _SUB_VARIABLE.sub(
                lambda m: "${" + m[2] + "}" if m[1] else str(params.get(m[2], f"<{m[2]}>")), values
            )
    resolved = {k: _eval(v, params, condition) for k, v in node.items()}
    return {k: v for k, v in resolved.items() if v is not _NO_VALUE}


class _Stack:
    """The template as deployed with these parameters: its active resources, their properties
    and each function's environment (Globals merged with the function's own)."""

    def __init__(self, template: dict[str, Any], **given: str):
        self.template = template
        self.params = _parameters(template, **given)
        self.conditions = _conditions(template, self.params)
        self.resources = {
            name: r
            for name, r in template["Resources"].items()
            if self.conditions.get(r.get("Condition", ""), True)
        }

    def value(self, node: Any) -> Any:
        return _eval(node, self.params, self.conditions.__getitem__)

    def props(self, name: str) -> dict[str, Any]:
        return self.value(self.resources[name]["Properties"])

    def stores(self) -> set[str]:
        return {n for n, r in self.resources.items() if r["Type"].startswith(STORE_TYPES)}

    def env(self, function: str) -> dict[str, Any]:
        own = self.template["Resources"][function]["Properties"].get("Environment", {})
        merged = {
            **self.template["Globals"]["Function"]["Environment"]["Variables"],
            **own.get("Variables", {}),
        }
        return self.value(merged)

    def store_env(self) -> dict[str, Any]:
        """The store variables, the same for every function (asserted)."""
        functions = _resources_of(self.template, "AWS::Serverless::Function")
        envs = [
            {k: v for k, v in self.env(f).items() if k.startswith(STORE_VARIABLES)}
            for f in functions
        ]
        assert all(e == envs[0] for e in envs)
        return envs[0]

    def rule_failures(self) -> list[str]:
        failed = []
        for rule in self.template.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.value(rule["RuleCondition"]):
                continue
            failed += [
                a["AssertDescription"] for a in rule["Assertions"] if not self.value(a["Assert"])
            ]
        return failed


def _local_deploy_parameters(env: dict[str, str]) -> dict[str, str]:
    from feed_wiring.settings import Settings

    settings = Settings.from_env(env)
    return {
        **deploy.stack_parameters(settings, "local", "http://127.0.0.1:4566/jwks.json"),
        **deploy.config_parameters("local"),
    }


@pytest.mark.parametrize("redis_cluster", ["false", "true"])
def test_the_emulator_deploy_creates_no_store_and_passes_its_endpoints(template, redis_cluster):
    """infra/deploy.py's parameters: all the template's, none creating a store; the functions
    get the SSM-named endpoints as before, REDIS_CLUSTER as the settings say, no replica."""
    stack = _Stack(template, **_local_deploy_parameters({"REDIS_CLUSTER": redis_cluster}))
    assert stack.stores() == set()
    assert not stack.rule_failures()
    assert stack.store_env() == {
        "POSTGRES_HOST": "/feed/local/postgres/host",
        "POSTGRES_PORT": "/feed/local/postgres/port",
        "POSTGRES_DB": "/feed/local/postgres/db",
        "POSTGRES_USER": "/feed/local/postgres/user",
        "POSTGRES_PASSWORD": (
            "{{resolve:secretsmanager:feed/local/stores:SecretString:postgres_password}}"
        ),
        "REDIS_HOST": "/feed/local/redis/host",
        "REDIS_PORT": "/feed/local/redis/port",
        "REDIS_DB": "/feed/local/redis/db",
        "REDIS_CLUSTER": redis_cluster,
    }
    outputs = {
        name
        for name, output in template["Outputs"].items()
        if stack.conditions.get(output.get("Condition", ""), True)
    }
    assert {
        "RedisConfigurationEndpoint",
        "PostgresWriterEndpoint",
        "PostgresReaderEndpoint",
    }.isdisjoint(outputs)


def test_no_function_overrides_the_store_variables_of_globals(template):
    for name in _resources_of(template, "AWS::Serverless::Function"):
        own = template["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {})
        assert not [k for k in own if k.startswith(STORE_VARIABLES)], name


VPC = {"SubnetIds": "subnet-0a,subnet-0b", "StoreSecurityGroupIds": "sg-0123456789abcdef0"}


@pytest.mark.parametrize(
    ("engine", "shards", "replicas", "multi_az"),
    [("redis", "3", "1", True), ("valkey", "8", "2", True), ("redis", "1", "0", False)],
)
def test_a_created_cache_is_cluster_mode_and_the_functions_get_its_configuration_endpoint(
    template, engine, shards, replicas, multi_az
):
    stack = _Stack(
        template,
        RedisNodeType="cache.r7g.large",
        RedisEngine=engine,
        RedisNumNodeGroups=shards,
        RedisReplicasPerNodeGroup=replicas,
        **VPC,
    )
    assert stack.stores() == {"RedisReplicationGroup", "RedisParameterGroup", "RedisSubnetGroup"}
    group = stack.props("RedisReplicationGroup")
    assert group["Engine"] == engine
    assert group["CacheNodeType"] == "cache.r7g.large"
    assert (group["NumNodeGroups"], group["ReplicasPerNodeGroup"]) == (shards, replicas)
    assert group["ClusterMode"] == "Enabled"
    assert group["AutomaticFailoverEnabled"] is True
    assert group["MultiAZEnabled"] is multi_az
    assert group["CacheParameterGroupName"] == "<RedisParameterGroup>"
    assert group["CacheSubnetGroupName"] == "<RedisSubnetGroup>"
    assert group["SecurityGroupIds"] == ["sg-0123456789abcdef0"]
    assert stack.props("RedisSubnetGroup")["SubnetIds"] == ["subnet-0a", "subnet-0b"]

    parameters = stack.props("RedisParameterGroup")
    assert parameters["CacheParameterGroupFamily"] == f"{engine}7"
    assert parameters["Properties"]["cluster-enabled"] == "yes"
    # What local Redis runs with (infra/devstack.py) and docs/design.md names for AWS.
    listpack = parameters["Properties"]["zset-max-listpack-entries"]
    assert f"zset-max-listpack-entries {listpack}" in (ROOT / "infra" / "devstack.py").read_text()
    assert "`volatile-lru`" in (ROOT / "docs" / "design.md").read_text()
    assert parameters["Properties"]["maxmemory-policy"] == "volatile-lru"

    env = stack.store_env()
    assert env["REDIS_HOST"] == "<RedisReplicationGroup.ConfigurationEndPoint.Address>"
    assert env["REDIS_PORT"] == "<RedisReplicationGroup.ConfigurationEndPoint.Port>"
    assert (env["REDIS_DB"], env["REDIS_CLUSTER"]) == ("0", "true")
    # Fan-out waits for a replica where the shards have one (test_redis_failover.py).
    assert env.get("REDIS_WAIT_REPLICAS") == ("1" if multi_az else None)
    assert env["POSTGRES_HOST"] == "/feed/local/postgres/host"  # Aurora not asked for
    assert "POSTGRES_REPLICA_HOST" not in env
    assert template["Outputs"]["RedisConfigurationEndpoint"]["Condition"] == "CreateRedisCluster"


def test_a_created_aurora_cluster_has_a_reader_and_the_functions_get_both_endpoints(template):
    stack = _Stack(template, AuroraInstanceClass="db.r7g.large", **VPC)
    assert stack.stores() == {
        "AuroraCluster",
        "AuroraWriterInstance",
        "AuroraReaderInstance",
        "AuroraSubnetGroup",
    }
    cluster = stack.props("AuroraCluster")
    assert cluster["Engine"] == "aurora-postgresql"
    assert cluster["DBSubnetGroupName"] == "<AuroraSubnetGroup>"
    assert cluster["VpcSecurityGroupIds"] == ["sg-0123456789abcdef0"]
    # The database, user and password the functions connect with.
    env = stack.store_env()
    assert cluster["DatabaseName"] == env["POSTGRES_DB"] == "/feed/local/postgres/db"
    assert cluster["MasterUsername"] == env["POSTGRES_USER"]
    assert cluster["MasterUserPassword"] == env["POSTGRES_PASSWORD"]
    assert template["Resources"]["AuroraCluster"]["DeletionPolicy"] == "Snapshot"
    for name in ("AuroraWriterInstance", "AuroraReaderInstance"):
        instance = stack.props(name)
        assert instance["DBClusterIdentifier"] == "<AuroraCluster>"
        assert instance["Engine"] == cluster["Engine"]
        assert instance["DBInstanceClass"] == "db.r7g.large"
    # The writer is created first (the first instance of a cluster is its writer).
    assert template["Resources"]["AuroraReaderInstance"]["DependsOn"] == "AuroraWriterInstance"

    assert env["POSTGRES_HOST"] == "<AuroraCluster.Endpoint.Address>"
    assert env["POSTGRES_PORT"] == "<AuroraCluster.Endpoint.Port>"
    assert env["POSTGRES_REPLICA_HOST"] == "<AuroraCluster.ReadEndpoint.Address>"
    assert env["POSTGRES_REPLICA_PORT"] == "<AuroraCluster.Endpoint.Port>"
    assert env["REDIS_CLUSTER"] == "false"  # ElastiCache not asked for
    for output in ("PostgresWriterEndpoint", "PostgresReaderEndpoint"):
        assert template["Outputs"][output]["Condition"] == "CreateAurora"


@pytest.mark.parametrize(
    ("port", "expected"), [("", "/feed/local/postgres/port"), ("6432", "6432")]
)
def test_a_replica_given_by_parameters_reaches_the_functions(template, port, expected):
    stack = _Stack(template, PostgresReplicaHost="replica.db.internal", PostgresReplicaPort=port)
    assert stack.stores() == set()
    env = stack.store_env()
    assert (env["POSTGRES_REPLICA_HOST"], env["POSTGRES_REPLICA_PORT"]) == (
        "replica.db.internal",
        expected,
    )
    assert env["POSTGRES_HOST"] == "/feed/local/postgres/host"


def test_a_redis_cluster_given_by_parameters_is_passed_as_such(template):
    stack = _Stack(template, RedisCluster="true")
    assert stack.stores() == set()
    env = stack.store_env()
    assert (env["REDIS_HOST"], env["REDIS_CLUSTER"]) == ("/feed/local/redis/host", "true")


@pytest.mark.parametrize(
    "store", [{"RedisNodeType": "cache.r7g.large"}, {"AuroraInstanceClass": "db.r7g.large"}]
)
def test_a_store_without_subnets_is_refused_up_front(template, store):
    assert _Stack(template, **store).rule_failures() == [
        "RedisNodeType and AuroraInstanceClass need SubnetIds."
    ]
    assert _Stack(template, **store, **VPC).rule_failures() == []


@pytest.mark.parametrize("environment", ["local", "prod"])
def test_samconfig_names_template_parameters_and_prod_creates_the_stores(template, environment):
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = config[environment]["deploy"]["parameters"]["parameter_overrides"]
    given = dict(item.split("=", 1) for item in overrides)
    stack = _Stack(template, **given)  # refuses a name the template does not declare
    assert stack.rule_failures() == []
    if environment == "local":
        assert stack.stores() == set()
        # The same variant URLs as infra/deploy.py gives the emulator stack.
        assert given["MediaCdnBase"] == _local_deploy_parameters({})["MediaCdnBase"]
    else:
        assert {"RedisReplicationGroup", "AuroraCluster", "AuroraReaderInstance"} <= stack.stores()
        assert stack.store_env()["REDIS_CLUSTER"] == "true"


def test_the_emulator_deploy_passes_a_configured_replica_to_the_functions(template):
    """POSTGRES_REPLICA_HOST/PORT in the settings (the local standby): infra/deploy.py hands
    them to the template, and every function gets them."""
    env = {"POSTGRES_REPLICA_HOST": "127.0.0.1", "POSTGRES_REPLICA_PORT": "15433"}
    stack = _Stack(template, **_local_deploy_parameters(env))
    assert stack.stores() == set()
    functions = stack.store_env()
    assert (functions["POSTGRES_REPLICA_HOST"], functions["POSTGRES_REPLICA_PORT"]) == (
        "127.0.0.1",
        "15433",
    )


def test_the_cleanup_function_gets_its_retention_settings_from_parameters(template):
    """ENGAGEMENT_RETENTION_DAYS and AUTHOR_LIST_SILENT_DAYS reach the cleanup job (the only
    one that reads them), the template's defaults being the settings' own; the emulator deploy
    passes the local settings."""
    from feed_wiring.settings import Settings

    names = ("ENGAGEMENT_RETENTION_DAYS", "AUTHOR_LIST_SILENT_DAYS")
    defaults = _Stack(template).env("CleanupFunction")
    settings = Settings.from_env({k: str(defaults[k]) for k in names})
    assert (settings.engagement_retention_days, settings.author_list_silent_days) == (
        Settings().engagement_retention_days,
        Settings().author_list_silent_days,
    )
    given = _Stack(template, EngagementRetentionDays="3", AuthorListSilentDays="14")
    env = given.env("CleanupFunction")
    assert (env["ENGAGEMENT_RETENTION_DAYS"], env["AUTHOR_LIST_SILENT_DAYS"]) == ("3", "14")
    local = _local_deploy_parameters({"ENGAGEMENT_RETENTION_DAYS": "2"})
    assert (local["EngagementRetentionDays"], local["AuthorListSilentDays"]) == ("2", "30")


# -- the media bucket ----------------------------------------------------------------------------

MEDIA_BUCKET_NAME = {"Sub": "feed-${Stage}-media-${AWS::AccountId}-${AWS::Region}"}


def test_the_media_bucket_is_private_and_encrypted(template):
    props = template["Resources"]["MediaBucket"]["Properties"]
    block = props["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}  # SSE-S3
    assert "AccessControl" not in props and "WebsiteConfiguration" not in props


def test_the_media_bucket_expires_uploads_after_a_day_and_takes_browser_posts(template):
    props = template["Resources"]["MediaBucket"]["Properties"]
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["Prefix"] == "uploads/"
    assert rule["ExpirationInDays"] == 1
    (cors,) = props["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["POST"] and cors["AllowedOrigins"]


def test_the_functions_get_the_bucket_s_name_not_a_reference_to_it(template):
    # A !Ref to a bucket that notifies a function would make the stack a cycle.
    props = template["Resources"]["MediaBucket"]["Properties"]
    assert props["BucketName"] == MEDIA_BUCKET_NAME
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["MEDIA_BUCKET"] == MEDIA_BUCKET_NAME
    assert "MediaBucket" not in json.dumps(template["Globals"])


MEDIA_ARN = "arn:${AWS::Partition}:s3:::feed-${Stage}-media-${AWS::AccountId}-${AWS::Region}"
DISTRIBUTION_ARN = (
    "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${MediaDistribution}"
)
# A deleted post's media (the fan-out worker's retract job, the cleanup job): listed by prefix,
# deleted, invalidated at the CDN.
DELETES_MEDIA = [
    {
        "Effect": "Allow",
        "Action": "s3:DeleteObject",
        "Resource": [{"Sub": f"{MEDIA_ARN}/media/*"}, {"Sub": f"{MEDIA_ARN}/uploads/*"}],
    },
    {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": {"Sub": MEDIA_ARN},
        "Condition": {"StringLike": {"s3:prefix": ["media/*", "uploads/*"]}},
    },
    {
        "Effect": "Allow",
        "Action": "cloudfront:CreateInvalidation",
        "Resource": {"Sub": DISTRIBUTION_ARN},
    },
]
# Every function's S3 and CloudFront statements; a function not named has none.
MEDIA_GRANTS = {
    # A presigned POST is accepted only if the signing role may put the object.
    "PostsFunction": [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": {"Sub": f"{MEDIA_ARN}/uploads/*"}}
    ],
    "MediaFunction": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:DeleteObject"],
            "Resource": {"Sub": f"{MEDIA_ARN}/uploads/*"},
        },
        # Delete: a second run of an event deletes the variants it wrote.
        {
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": {"Sub": f"{MEDIA_ARN}/media/*"},
        },
        # Else S3 answers a HEAD of a missing upload 403, not 404.
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": {"Sub": MEDIA_ARN},
            "Condition": {"StringLike": {"s3:prefix": ["uploads/*"]}},
        },
    ],
    "FanoutFunction": DELETES_MEDIA,
    "CleanupFunction": DELETES_MEDIA,
}


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        st
        for policy in resource["Properties"].get("Policies", [])
        if isinstance(policy, dict) and "Statement" in policy
        for st in policy["Statement"]
    ]


def test_each_function_has_exactly_its_media_grants_by_the_bucket_s_name(template):
    """Uploads are put by the posts function, read and deleted by the media function, which
    alone writes variants; deleted posts' objects are deleted and invalidated by the fan-out
    and cleanup jobs. The bucket by its name everywhere: the bucket notifies the media
    function, so a function's policy referring to the bucket resource would be a cycle."""
    for name in _resources_of(template, "AWS::Serverless::Function"):
        statements = _statements(template["Resources"][name])
        media = [st for st in statements if re.search(r"\b(s3|cloudfront):", json.dumps(st))]
        assert media == MEDIA_GRANTS.get(name, []), name
        # Only the S3 event names the bucket resource (SAM turns it into the notification).
        props = dict(template["Resources"][name]["Properties"])
        props.pop("Events", None)
        assert "MediaBucket" not in json.dumps(props), name


def test_upload_events_the_media_function_failed_are_kept_and_alarmed(template):
    props = template["Resources"]["MediaFunction"]["Properties"]
    queue = props["DeadLetterQueue"]
    assert queue["Type"] == "SQS"
    assert json.dumps(queue["TargetArn"]).count("MediaFailedEventsQueue") == 1
    alarm = template["Resources"]["MediaFailedEventsAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert "MediaFailedEventsQueue" in json.dumps(alarm["Dimensions"])
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_the_media_function_is_notified_of_uploads_only(template):
    props = template["Resources"]["MediaFunction"]["Properties"]
    assert props["FunctionName"] == {"Sub": "feed-${Stage}-media"}
    assert props["CodeUri"] == "functions/media/"
    assert (props["MemorySize"], props["Timeout"]) == (1024, 60)
    (event,) = props["Events"].values()
    assert event["Type"] == "S3"
    assert event["Properties"]["Bucket"] == {"Ref": "MediaBucket"}
    assert event["Properties"]["Events"] == "s3:ObjectCreated:*"
    # Its own writes go under media/: a filter on uploads/ keeps them from invoking it again.
    assert event["Properties"]["Filter"] == {
        "S3Key": {"Rules": [{"Name": "prefix", "Value": "uploads/"}]}
    }
    assert _Stack(template).props("MediaFunction").get("ReservedConcurrentExecutions") is None
    capped = _Stack(template, MediaReservedConcurrency="5").props("MediaFunction")
    assert capped["ReservedConcurrentExecutions"] == "5"


# -- the media CDN -------------------------------------------------------------------------------

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"  # AWS's managed cache policy


def test_the_distribution_reads_the_bucket_with_origin_access_control(template):
    oac = template["Resources"]["MediaOriginAccessControl"]
    assert oac["Type"] == "AWS::CloudFront::OriginAccessControl"
    config = oac["Properties"]["OriginAccessControlConfig"]
    assert (
        config["OriginAccessControlOriginType"],
        config["SigningBehavior"],
        config["SigningProtocol"],
    ) == ("s3", "always", "sigv4")

    distribution = template["Resources"]["MediaDistribution"]
    assert distribution["Type"] == "AWS::CloudFront::Distribution"
    props = distribution["Properties"]["DistributionConfig"]
    (origin,) = props["Origins"]
    # The bucket's regional domain by name: a reference to the bucket would be a cycle
    # (bucket -> media function -> distribution -> bucket).
    assert origin["DomainName"] == {
        "Sub": MEDIA_BUCKET_NAME["Sub"] + ".s3.${AWS::Region}.amazonaws.com"
    }
    assert "MediaBucket" not in json.dumps(distribution)
    assert origin["OriginAccessControlId"] == {"GetAtt": "MediaOriginAccessControl.Id"}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    assert props["Enabled"] is True
    assert props["HttpVersion"] == "http2and3"
    assert _Stack(template).value(props["PriceClass"]) == "PriceClass_100"

    behavior = props["DefaultCacheBehavior"]
    assert behavior["TargetOriginId"] == origin["Id"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == behavior["CachedMethods"] == ["GET", "HEAD"]
    assert behavior["Compress"] is True
    # The objects' Cache-Control decides the TTLs; no legacy ForwardedValues or TTLs beside it.
    assert behavior["CachePolicyId"] == CACHING_OPTIMIZED
    assert not {"ForwardedValues", "DefaultTTL", "MaxTTL", "MinTTL"} & set(behavior)
    assert "CacheBehaviors" not in props


@pytest.mark.parametrize("where", ["aws", "emulator"])
def test_the_bucket_policy_lets_only_this_distribution_read_only_variants(template, where):
    given = _local_deploy_parameters({}) if where == "emulator" else {}
    stack = _Stack(template, **given)
    policy = stack.props("MediaBucketPolicy")
    assert policy["Bucket"] == "<MediaBucket>"
    statements = policy["PolicyDocument"]["Statement"]
    allows = [st for st in statements if st["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "DistributionReadsVariants",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": "arn:<AWS::Partition>:s3:::<MediaBucket>/media/*",
            "Condition": {
                "StringEquals": {
                    "AWS:SourceArn": (
                        "arn:<AWS::Partition>:cloudfront::<AWS::AccountId>:distribution/"
                        "<MediaDistribution>"
                    )
                }
            },
        }
    ]
    denies = [st for st in statements if st["Effect"] == "Deny"]
    tls_only = {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [
            "arn:<AWS::Partition>:s3:::<MediaBucket>",
            "arn:<AWS::Partition>:s3:::<MediaBucket>/*",
        ],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    # The emulator takes every request as plain HTTP, CloudFront's origin fetch too (README).
    assert denies == ([tls_only] if where == "aws" else [])
    # The bucket itself stays private: the grant is to a service, for one distribution.
    assert stack.props("MediaBucket")["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]


def test_every_function_gets_the_cdn_base_and_the_distribution(template):
    functions = _resources_of(template, "AWS::Serverless::Function")
    cases = [
        ({}, "https://<MediaDistribution.DomainName>"),
        ({"MediaCdnBase": "https://media.example.com"}, "https://media.example.com"),
        # The emulator: its S3 address, path-style, and the stack's bucket.
        (
            _local_deploy_parameters({}),
            "http://127.0.0.1:4566/feed-local-media-000000000000-us-east-1",
        ),
    ]
    for given, base in cases:
        stack = _Stack(template, **given)
        assert base == stack.value(template["Outputs"]["MediaCdnBase"]["Value"])
        for name in functions:
            env = stack.env(name)
            assert env["MEDIA_CDN_BASE"] == base, name
            assert env["MEDIA_CDN_DISTRIBUTION_ID"] == "<MediaDistribution>", name
    assert template["Outputs"]["MediaDistributionId"]["Value"] == {"Ref": "MediaDistribution"}
    assert template["Outputs"]["MediaBucketName"]["Value"] == {"Ref": "MediaBucket"}
    assert deploy.media_bucket_name("local", "000000000000", "us-east-1") == _substitute(
        MEDIA_BUCKET_NAME["Sub"]
    ).replace("<Stage>", "local").replace("<AWS::AccountId>", "000000000000").replace(
        "<AWS::Region>", "us-east-1"
    )


def test_a_cdn_base_with_a_trailing_slash_is_refused(template):
    pattern = re.compile(template["Parameters"]["MediaCdnBase"]["AllowedPattern"])
    for ok in ("", "https://d111.cloudfront.net", "http://127.0.0.1:4566/feed-local-media"):
        assert pattern.fullmatch(ok), ok
    for bad in ("https://d111.cloudfront.net/", "d111.cloudfront.net"):
        assert not pattern.fullmatch(bad), bad


# -- no circular dependency ----------------------------------------------------------------------
# `sam validate --lint` does not see one (cfn-lint 1.58 passed a template whose functions !Ref
# the notifying bucket): the template is translated by SAM's own translator (in the SAM CLI's
# virtualenv) and the dependency graph of the result is searched.

_TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(sys.stdin.read())
for resource in template["Resources"].values():
    for key in ("CodeUri", "ContentUri"):  # sam build replaces local folders with S3 URIs
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = "s3://bucket/key"
json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)
"""


def _translated(text: str) -> dict[str, Any]:
    import os
    import subprocess

    python = deploy.ensure_sam().parent / "python"
    out = subprocess.run(
        [str(python), "-c", _TRANSLATE],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    return json.loads(out.stdout)


def _dependencies(resources: dict[str, Any]) -> dict[str, set[str]]:
    """Resource -> the resources it refers to (Ref, GetAtt, Sub variables) or DependsOn."""

    def refs(node: Any) -> set[str]:
        if isinstance(node, list):
            return set().union(set(), *(refs(n) for n in node))
        if not isinstance(node, dict):
            return set()
        found: set[str] = set()
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {v.split(".")[0] for lit, v in _SUB_VARIABLE.findall(text) if not lit}
                if isinstance(value, list):
                    found |= refs(value[1])
            found |= refs(value)
        return found

    graph = {}
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        graph[name] = (refs(resource.get("Properties", {})) | set(depends)) & set(resources)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One dependency cycle, as a path that ends where it starts; [] when there is none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_translated_template_has_no_circular_dependency():
    text = (ROOT / "template.yaml").read_text()
    resources = _translated(text)["Resources"]
    # SAM's S3 event: the bucket notifies the function and waits for its invoke permission.
    bucket = resources["MediaBucket"]
    (notify,) = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert notify["Function"] == {"Fn::GetAtt": ["MediaFunction", "Arn"]}
    assert "MediaFunctionUploadPermission" in bucket["DependsOn"]
    assert _cycle(_dependencies(resources)) == []
    # The check sees the cycle a reference from the functions to the bucket would close.
    by_ref = text.replace(
        'MEDIA_BUCKET: !Sub "feed-${Stage}-media-${AWS::AccountId}-${AWS::Region}"',
        "MEDIA_BUCKET: !Ref MediaBucket",
    )
    assert by_ref != text
    cycle = _cycle(_dependencies(_translated(by_ref)["Resources"]))
    assert "MediaBucket" in cycle and cycle[0] == cycle[-1], cycle
