"""Checks of template.yaml that cfn-lint does not make: the schedule expression, the
timeout, the architecture, the IAM scope, that every env var is a parameter, the logging
configuration and the alarms. Conditional parts are checked as deployed: `deployed()`
evaluates the template's Conditions for given parameter values and picks the Fn::If
branches."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = cfn_yaml.load(str(ROOT / "template.yaml"))
FUNCTION = TEMPLATE["Resources"]["JanitorFunction"]
PROPS = FUNCTION["Properties"]
PARAMS = TEMPLATE["Parameters"]

# The configuration contract (src/config.rs), and the bootstrap's EVENT_BUS_NAME (src/main.rs).
ENV_VARS = {
    "UNTAGGED_MAX_AGE_DAYS", "UNTAGGED_MAX_COUNT", "DRY_RUN", "INCLUDE_REPOSITORIES",
    "EXCLUDE_REPOSITORIES", "MAX_CONCURRENCY", "LIFECYCLE_POLICY", "LIFECYCLE_POLICIES",
    "REPOSITORY_TAG_OVERRIDES", "REGIONS", "PROTECT_IN_USE", "PROTECT_LAMBDA_VERSIONS",
    "MAX_DELETIONS_PER_RUN", "MAX_TAGGED_DELETE_PERCENT", "EVENT_BUS_NAME",
}
# What the variables default to when the template's parameters keep their defaults.
ENV_DEFAULTS = {
    "REGIONS": "", "PROTECT_IN_USE": "ecs,lambda", "PROTECT_LAMBDA_VERSIONS": "all",
    "MAX_DELETIONS_PER_RUN": "10000", "MAX_TAGGED_DELETE_PERCENT": "50", "EVENT_BUS_NAME": "",
}

RATE_UNITS = {"minute", "hour", "day"}
CRON_FIELD = r"[0-9A-Za-z*?,/#L\-]+"


def valid_schedule(expr: str) -> bool:
    """EventBridge Scheduler's rate(), cron() and at() forms."""
    m = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expr)
    if m:
        value, unit = int(m.group(1)), m.group(2)
        singular = unit.rstrip("s") if unit.endswith("s") else unit
        # rate(1 day) is singular; rate(2 days) plural; rate(0 ...) is invalid.
        return value >= 1 and singular in RATE_UNITS and (unit == singular) == (value == 1)
    m = re.fullmatch(r"cron\((.+)\)", expr)
    if m:
        fields = m.group(1).split(" ")
        if len(fields) != 6 or not all(re.fullmatch(CRON_FIELD, f) for f in fields):
            return False
        day_of_month, day_of_week = fields[2], fields[4]
        return (day_of_month == "?") != (day_of_week == "?")  # exactly one must be '?'
    return re.fullmatch(r"at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)", expr) is not None


@pytest.mark.parametrize("expr,ok", [
    ("rate(1 day)", True), ("rate(12 hours)", True), ("rate(5 minutes)", True),
    ("cron(0 6 * * ? *)", True), ("cron(0 6 ? * MON-FRI *)", True),
    ("rate(1 days)", False), ("rate(2 day)", False), ("rate(0 hours)", False),
    ("rate(1 week)", False), ("cron(0 6 * * *)", False), ("cron(0 6 * * * *)", False),
    ("daily", False),
])
def test_schedule_expression_checker(expr, ok):
    assert valid_schedule(expr) is ok


def test_default_schedule_is_valid_and_used_by_a_schedule_v2_event():
    assert valid_schedule(PARAMS["ScheduleExpression"]["Default"])
    event = PROPS["Events"]["Schedule"]
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == {"Ref": "ScheduleExpression"}


def test_timeout_is_within_lambda_limits():
    timeout = PARAMS["TimeoutSeconds"]
    assert 1 <= timeout["MinValue"] <= timeout["Default"] <= timeout["MaxValue"] <= 900
    assert PROPS["Timeout"] == {"Ref": "TimeoutSeconds"}


def test_runtime_architecture_and_build():
    assert PROPS["Runtime"] == "provided.al2023"
    assert PROPS["Architectures"] == ["arm64"]
    assert PROPS["Handler"] == "bootstrap"
    assert FUNCTION["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert 128 <= PROPS["MemorySize"] <= 10240


def test_every_env_var_is_set_from_a_parameter():
    variables = PROPS["Environment"]["Variables"]
    assert set(variables) == ENV_VARS
    for name, value in variables.items():
        assert value["Ref"] in PARAMS, name


def test_env_var_defaults():
    variables = PROPS["Environment"]["Variables"]
    for name, default in ENV_DEFAULTS.items():
        assert str(PARAMS[variables[name]["Ref"]].get("Default", "")) == default, name


# --- the template as deployed -------------------------------------------------------------

NO_VALUE = object()


def evaluate(expr, params):
    """A condition expression's value for parameter values `params`."""
    if not isinstance(expr, dict):
        return expr
    (fn, arg), = expr.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Fn::Not":
        return not evaluate(arg[0], params)
    if fn == "Fn::Equals":
        return evaluate(arg[0], params) == evaluate(arg[1], params)
    if fn == "Fn::Select":
        return evaluate(arg[1], params)[int(arg[0])]
    if fn == "Fn::Split":
        return evaluate(arg[1], params).split(arg[0])
    raise AssertionError(f"unexpected {fn} in Conditions")


def conditions(**params):
    """Every condition's value when the parameters are their defaults, but for `params`."""
    values = {name: str(p.get("Default", "")) for name, p in PARAMS.items()} | params
    return {name: evaluate(expr, values) for name, expr in TEMPLATE["Conditions"].items()}


def pick(node, conds):
    """`node` with each Fn::If resolved by `conds` and AWS::NoValue left out."""
    if isinstance(node, dict):
        if list(node) == ["Fn::If"]:
            name, yes, no = node["Fn::If"]
            return pick(yes if conds[name] else no, conds)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        picked = {k: pick(v, conds) for k, v in node.items()}
        return {k: v for k, v in picked.items() if v is not NO_VALUE}
    if isinstance(node, list):
        return [v for v in (pick(v, conds) for v in node) if v is not NO_VALUE]
    return node


def deployed(**params):
    """The template's resources as deployed with these parameter values."""
    return pick(TEMPLATE["Resources"], conditions(**params))


def statements(resources):
    return [s for p in resources["JanitorFunction"]["Properties"]["Policies"] for s in p["Statement"]]


def as_list(value):
    return list(value) if isinstance(value, list) else [value]


def arn(service, resource):
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:*:${{AWS::AccountId}}:{resource}"}


BUS_ARN = "arn:aws:events:eu-west-1:111122223333:event-bus/central"
# The function itself, by the name the template gives it (its own Arn would be circular).
OWN_FUNCTION = {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}"}
CURSOR_ACTIONS = {"lambda:ListTags", "lambda:TagResource"}
REPOSITORIES = arn("ecr", "repository/*")
# Each action and the resource IAM scopes it by ("*" where IAM cannot scope it: the service
# authorization reference lists no resource type for the action).
PERMISSIONS = {
    "ecr:DescribeRepositories": "*",
    "ecr:DescribeImages": REPOSITORIES,
    "ecr:BatchGetImage": REPOSITORIES,
    "ecr:ListTagsForResource": REPOSITORIES,
    "ecr:BatchDeleteImage": REPOSITORIES,
    "ecs:ListClusters": "*",
    "ecs:ListServices": "*",
    "ecs:DescribeTaskDefinition": "*",
    "ecs:ListTasks": arn("ecs", "container-instance/*"),
    "ecs:DescribeTasks": arn("ecs", "task/*"),
    "ecs:DescribeServices": arn("ecs", "service/*"),
    "lambda:ListFunctions": "*",
    "lambda:ListVersionsByFunction": arn("lambda", "function:*"),
    "lambda:GetFunction": arn("lambda", "function:*"),
    "lambda:ListAliases": arn("lambda", "function:*"),
    "lambda:ListTags": OWN_FUNCTION,
    "lambda:TagResource": OWN_FUNCTION,
}


def test_iam_is_least_privilege():
    granted = {}
    for s in statements(deployed()):
        assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s
        resources = as_list(s["Resource"])
        assert "*" not in resources or resources == ["*"], f"{s['Sid']}: '*' among others"
        for action in as_list(s["Action"]):
            assert "*" not in action, f"wildcard action {action}"
            assert action not in granted, f"{action} granted twice"
            granted[action] = resources
    assert set(granted) == set(PERMISSIONS), f"unexpected permissions {set(granted) ^ set(PERMISSIONS)}"
    for action, resource in PERMISSIONS.items():
        assert resource in granted[action], f"{action} needs {resource}"
        if resource == "*":
            continue
        # Other resources of its statement are of types this action has no use for.
        assert "*" not in granted[action], action
    assert granted["ecr:BatchDeleteImage"] == [REPOSITORIES], "deletes only images"


def test_every_call_is_limited_to_the_janitors_regions():
    home = [{"Ref": "AWS::Region"}]
    for params, regions in [({}, home),
                            ({"Regions": "us-east-1,eu-west-1"}, {"Fn::Split": [",", {"Ref": "Regions"}]})]:
        for s in statements(deployed(**params)):
            # The cursor is on the function itself, in the stack's region whatever Regions says.
            expected = home if CURSOR_ACTIONS & set(as_list(s["Action"])) else regions
            assert s["Condition"]["StringEquals"] == {"aws:RequestedRegion": expected}, s["Sid"]
            assert set(s["Condition"]) <= {"StringEquals", "ForAllValues:StringLike"}, s["Sid"]
    pattern = PARAMS["Regions"]["AllowedPattern"]
    for value, ok in [("", True), ("us-east-1", True), ("us-east-1,eu-west-1", True),
                      ("us-east-1, eu-west-1", False), ("us-east-1,", False)]:
        assert (re.fullmatch(pattern, value) is not None) is ok, value


def test_run_events_only_with_a_bus_and_only_on_that_bus():
    def put_events(**params):
        found = [s for s in statements(deployed(**params)) if "events:PutEvents" in as_list(s["Action"])]
        return [s["Resource"] for s in found]

    assert put_events() == [], "no bus, no permission"
    assert put_events(EventBusName="ops") == [
        {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"}]
    assert conditions(EventBusName=BUS_ARN)["EventBusIsArn"]
    assert put_events(EventBusName=BUS_ARN) == [{"Ref": "EventBusName"}]
    publish = [s for s in statements(deployed(EventBusName="ops")) if s.get("Sid") == "PublishRunEvents"]
    assert as_list(publish[0]["Action"]) == ["events:PutEvents"]


def iam_actions(node):
    """Every action of every IAM statement anywhere in the template, both Fn::If branches."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            assert "NotAction" not in node, node
            yield from as_list(node["Action"])
        for value in node.values():
            yield from iam_actions(value)
    elif isinstance(node, list):
        for value in node:
            yield from iam_actions(value)


# Writes the janitor may make: deleting images, publishing its run event, its cursor tag on
# itself, and its logs (the Lambda basic execution role SAM adds to the function's role).
WRITES = {"ecr:BatchDeleteImage", "events:PutEvents", "lambda:TagResource",
          "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
READ_VERBS = ("Describe", "List", "Get", "BatchGet")


def test_no_action_anywhere_writes_but_deletes_events_and_logs():
    actions = set(iam_actions(TEMPLATE))
    assert "events:PutEvents" in actions and "ecr:BatchDeleteImage" in actions
    for action in actions - WRITES:
        verb = action.split(":", 1)[1]
        assert verb.startswith(READ_VERBS), f"{action} is not read-only"
    # No other source of permissions: no managed policies, own role or SAM policy templates,
    # so the role holds these statements and SAM's basic execution role only.
    assert "Role" not in PROPS and "ManagedPolicyArns" not in PROPS
    for policy in PROPS["Policies"]:
        assert set(policy) == {"Version", "Statement"}, policy
    roles = [r for r in TEMPLATE["Resources"].values() if r["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy")]
    assert not roles


def test_the_only_tag_the_janitor_writes_is_its_cursor_on_its_own_function():
    assert PROPS["FunctionName"] == {"Ref": "AWS::StackName"}, "the ARN the policy names is this function's"
    for params in ({}, {"Regions": "us-east-1,eu-west-1"}, {"Shards": "8"}):
        tagging = [s for s in statements(deployed(**params)) if "lambda:TagResource" in as_list(s["Action"])]
        assert len(tagging) == 1, params
        (s,) = tagging
        assert as_list(s["Action"]) == ["lambda:TagResource"], "nothing else in that statement"
        assert s["Resource"] == OWN_FUNCTION
        assert s["Condition"]["ForAllValues:StringLike"] == {"aws:TagKeys": ["ecr-janitor:cursor*"]}
    # No way to remove or change anything else about a function.
    actions = set(iam_actions(TEMPLATE))
    assert not {a for a in actions if a.startswith("lambda:") and a not in PERMISSIONS}, actions


def test_logs_are_json_in_the_stacks_log_group_at_info_or_lower():
    logging = PROPS["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    assert logging["LogGroup"] == {"Ref": "JanitorLogGroup"}
    assert logging["ApplicationLogLevel"] == {"Ref": "LogLevel"}
    # The metrics line has no level, so Lambda counts it as INFO: WARN would drop it.
    assert set(PARAMS["LogLevel"]["AllowedValues"]) <= {"TRACE", "DEBUG", "INFO"}
    assert PARAMS["LogLevel"]["Default"] == "INFO"


METRICS_RS = (ROOT / "src" / "report" / "metrics.rs").read_text()
NAMESPACE = re.search(r'pub const NAMESPACE: &str = "(\w+)";', METRICS_RS).group(1)
EMITTED = set(re.findall(r'\("(\w+)", (?:COUNT|BYTES),', METRICS_RS))
ALARMS = {name: r["Properties"] for name, r in TEMPLATE["Resources"].items()
          if r["Type"] == "AWS::CloudWatch::Alarm"}


def alarm_on(metric):
    found = [p for p in ALARMS.values() if p["MetricName"] == metric]
    assert len(found) == 1, metric
    return found[0]


def test_alarms_watch_errors_incomplete_runs_and_repository_errors():
    assert {"IncompleteRuns", "RepositoryErrors"} <= EMITTED
    errors = alarm_on("Errors")
    assert errors["Namespace"] == "AWS/Lambda"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "JanitorFunction"}}]
    for metric in ("IncompleteRuns", "RepositoryErrors"):
        alarm = alarm_on(metric)
        assert alarm["Namespace"] == NAMESPACE
        # The EMF line's dimensions, for the runs the schedule makes.
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "JanitorFunction"}},
                                       {"Name": "DryRun", "Value": {"Ref": "DryRun"}}]
    incomplete = alarm_on("IncompleteRuns")
    assert (incomplete["EvaluationPeriods"], incomplete["DatapointsToAlarm"]) == (2, 2), "two runs in a row"
    for alarm in ALARMS.values():
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching", "no run in a period is no failure"
        # CloudWatch: Period x EvaluationPeriods at most 7 days, for periods of 1 hour or more.
        assert alarm["Period"] == {"Ref": "AlarmPeriodSeconds"}
        period = PARAMS["AlarmPeriodSeconds"]
        assert period["MinValue"] >= 3600 and period["MinValue"] % 60 == 0
        assert period["MaxValue"] * alarm["EvaluationPeriods"] <= 7 * 86400


def test_alarm_actions_only_with_a_topic():
    for params, actions in [({}, None), ({"AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops"},
                                         [{"Ref": "AlarmTopicArn"}])]:
        resources = deployed(**params)
        for name in ALARMS:
            props = resources[name]["Properties"]
            assert props.get("AlarmActions") == actions and props.get("OKActions") == actions, name


def test_log_group_has_retention():
    log_group = TEMPLATE["Resources"]["JanitorLogGroup"]
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_cfn_lint_is_clean():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    assert cfn_lint.exists(), "cfn-lint is missing: run `make venv` (pins it in requirements-test.txt)"
    result = subprocess.run(
        [str(cfn_lint), str(ROOT / "template.yaml")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def resources_as_deployed(**params):
    """`deployed()`, leaving out the resources whose Condition is false."""
    conds = conditions(**params)
    return {name: r for name, r in deployed(**params).items()
            if "Condition" not in r or conds[r["Condition"]]}


def test_one_shard_is_invoked_directly_by_the_schedule():
    resources = resources_as_deployed()
    assert "ShardedSweep" not in resources
    schedule = resources["JanitorFunction"]["Properties"]["Events"]["Schedule"]["Properties"]
    assert schedule["State"] == "ENABLED"


def test_shards_run_through_a_state_machine_that_may_invoke_this_function_only():
    resources = resources_as_deployed(Shards="8")
    function_schedule = resources["JanitorFunction"]["Properties"]["Events"]["Schedule"]["Properties"]
    assert function_schedule["State"] == "DISABLED", "the state machine's schedule runs the sweep"
    machine = resources["ShardedSweep"]["Properties"]
    schedule = machine["Events"]["Schedule"]
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "ScheduleExpression"}
    assert machine["Policies"] == [{"LambdaInvokePolicy": {"FunctionName": {"Ref": "JanitorFunction"}}}]
    assert machine["DefinitionSubstitutions"] == {
        "ShardCount": {"Ref": "Shards"},
        "ShardConcurrency": {"Ref": "ShardConcurrency"},
        "JanitorFunctionArn": {"Fn::GetAtt": ["JanitorFunction", "Arn"]},
    }
    states = machine["Definition"]["States"]
    assert machine["Definition"]["StartAt"] == "Shards"
    assert states["Shards"]["Parameters"] == {
        "indexes.$": "States.ArrayRange(0, States.MathAdd(${ShardCount}, -1), 1)"}
    sweep = states["Sweep"]
    assert (sweep["Type"], sweep["ItemsPath"], sweep["MaxConcurrency"]) == (
        "Map", "$.indexes", "${ShardConcurrency}")
    # Each item is the invocation payload: the janitor's `shard` override, as numbers.
    assert sweep["ItemSelector"] == {
        "shard": {"index.$": "$$.Map.Item.Value", "count.$": "States.StringToJson('${ShardCount}')"},
        "totalsOnly": True,
    }
    task = sweep["ItemProcessor"]["States"]["SweepShard"]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"] == {"FunctionName": "${JanitorFunctionArn}", "Payload.$": "$"}
    assert set(task["ResultSelector"]) == {"shard.$", "complete.$", "totals.$", "repositories.$"}
    assert task["End"] is True and sweep["End"] is True
    limits = PARAMS["Shards"]
    assert (limits["MinValue"], limits["MaxValue"], limits["Default"]) == (1, 1000, 1)
