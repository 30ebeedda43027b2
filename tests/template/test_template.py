"""Checks of template.yaml that cfn-lint does not make: the schedule expression, the
timeout, the architecture, the IAM scope, and that every env var is a parameter."""

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

# The configuration contract (src/config.rs).
ENV_VARS = {
    "UNTAGGED_MAX_AGE_DAYS", "UNTAGGED_MAX_COUNT", "DRY_RUN", "INCLUDE_REPOSITORIES",
    "EXCLUDE_REPOSITORIES", "MAX_CONCURRENCY", "LIFECYCLE_POLICY", "LIFECYCLE_POLICIES",
    "REPOSITORY_TAG_OVERRIDES",
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


def test_iam_is_least_privilege():
    statements = [s for p in PROPS["Policies"] for s in p["Statement"]]
    actions = {}
    for s in statements:
        for action in [s["Action"]] if isinstance(s["Action"], str) else s["Action"]:
            assert "*" not in action, f"wildcard action {action}"
            actions[action] = s["Resource"]
    assert actions.pop("ecr:DescribeRepositories") == "*"
    for action in ("ecr:DescribeImages", "ecr:BatchDeleteImage", "ecr:ListTagsForResource"):
        resource = actions.pop(action)
        assert resource == {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"}
    assert not actions, f"unexpected permissions {actions}"


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
