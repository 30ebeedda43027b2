"""Bad configuration or a bad event: exit 2, the error names the problem, not
one ECR request is made and nothing is deleted."""

from __future__ import annotations

import json
import subprocess

import pytest

from ecr_emulator import days_ago
from e2e_helpers import assert_names, plain, scheduled_event

# How both binaries introduce a configuration error; then one `  - VARIABLE: problem` line each.
CONFIG_ERROR_HEADER = "invalid configuration, nothing was done:"

POLICY = json.dumps({"rules": [{"rulePriority": 1, "selection": {
    "tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
    "action": {"type": "expire"}}]})


@pytest.fixture
def seeded(emu):
    """A registry where a real (non-dry) run would delete something."""
    emu.push_image("svc", pushed_at=days_ago(30))
    emu.push_image("svc", pushed_at=days_ago(40))
    emu.push_image("other/repo", pushed_at=days_ago(50))
    emu.push_image("other/repo", ["latest"], pushed_at=days_ago(50))
    return emu.snapshot()


def assert_refused(run, emu, seeded, names=()):
    assert run.code == 2, run.describe()
    assert emu.request_counts() == {}, f"ECR was called: {emu.request_counts()}\n{run.describe()}"
    assert emu.snapshot() == seeded, "something was deleted"
    assert_names(run.stderr, names)
    assert plain(run.stderr).strip(), "no error message on stderr"


BAD_ENV = [
    pytest.param({"UNTAGGED_MAX_AGE_DAYS": "abc"}, ["UNTAGGED_MAX_AGE_DAYS"], id="age-abc"),
    pytest.param({"UNTAGGED_MAX_AGE_DAYS": "-1"}, ["UNTAGGED_MAX_AGE_DAYS"], id="age-negative"),
    pytest.param({"UNTAGGED_MAX_AGE_DAYS": "1.5"}, ["UNTAGGED_MAX_AGE_DAYS"], id="age-fraction"),
    pytest.param({"DRY_RUN": "maybe"}, ["DRY_RUN"], id="dry-run-maybe"),
    pytest.param({"INCLUDE_REPOSITORIES": "a,,b"}, ["INCLUDE_REPOSITORIES"], id="include-empty-pattern"),
    pytest.param({"EXCLUDE_REPOSITORIES": "a,,b"}, ["EXCLUDE_REPOSITORIES"], id="exclude-empty-pattern"),
    pytest.param({"UNTAGGED_MAX_AGE_DAYS": "off", "UNTAGGED_MAX_COUNT": "off"}, [], id="both-limits-off"),
    pytest.param({"UNTAGGED_MAX_AGE_DAYS": "0"}, [], id="age-0-and-no-count"),
    pytest.param({"UNTAGGED_MAX_COUNT": "0"}, ["UNTAGGED_MAX_COUNT"], id="count-0"),
    pytest.param({"UNTAGGED_MAX_COUNT": "many"}, ["UNTAGGED_MAX_COUNT"], id="count-text"),
    pytest.param({"MAX_CONCURRENCY": "0"}, ["MAX_CONCURRENCY"], id="concurrency-0"),
    pytest.param({"MAX_CONCURRENCY": "eight"}, ["MAX_CONCURRENCY"], id="concurrency-text"),
    pytest.param({"LIFECYCLE_POLICY": POLICY, "UNTAGGED_MAX_AGE_DAYS": "7"},
                 ["LIFECYCLE_POLICY", "UNTAGGED_MAX_AGE_DAYS"], id="policy-and-shorthand"),
    pytest.param({"LIFECYCLE_POLICY": "{not json"}, ["LIFECYCLE_POLICY"], id="policy-not-json"),
    pytest.param({"LIFECYCLE_POLICY": json.dumps({"rules": []})}, ["LIFECYCLE_POLICY"], id="policy-no-rules"),
    pytest.param({"LIFECYCLE_POLICY": json.dumps({"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                                          "countNumber": 1}, "action": {"type": "expire"}}]})},
                 ["LIFECYCLE_POLICY"], id="policy-any-rule-not-last"),
    pytest.param({"LIFECYCLE_POLICY": json.dumps({"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                                          "countNumber": 5}, "action": {"type": "expire"}},
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
                                          "countType": "imageCountMoreThan", "countNumber": 5},
         "action": {"type": "expire"}}]})},
                 ["LIFECYCLE_POLICY"], id="policy-duplicate-priority"),
    pytest.param({"LIFECYCLE_POLICY": json.dumps({"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan",
                                          "countNumber": 5}, "action": {"type": "expire"}}]})},
                 ["LIFECYCLE_POLICY"], id="policy-tagged-without-tag-list"),
    pytest.param({"LIFECYCLE_POLICIES": "[1,2]", "REPOSITORY_TAG_OVERRIDES": "true"},
                 ["LIFECYCLE_POLICIES"], id="policies-not-object"),
    pytest.param({"REPOSITORY_TAG_OVERRIDES": "sometimes"}, ["REPOSITORY_TAG_OVERRIDES"], id="overrides-bad-bool"),
]


@pytest.mark.parametrize("env,names", BAD_ENV)
@pytest.mark.parametrize("dry_run", ["false", "true"])
def test_bad_env_value(janitor, emu, seeded, env, names, dry_run):
    run = janitor.sweep(env={"DRY_RUN": dry_run, **env})
    assert_refused(run, emu, seeded, names)
    if not names:  # both untagged limits off: either variable may be named
        text = plain(run.stderr)
        assert "UNTAGGED_MAX_AGE_DAYS" in text or "UNTAGGED_MAX_COUNT" in text, text


def problem_lines(stderr: str) -> dict[str, str]:
    """The `  - VARIABLE: problem` lines under the configuration error, by variable
    (a policy's own problems, indented further below its line, are left out)."""
    lines = plain(stderr).splitlines()
    headers = [i for i, line in enumerate(lines) if line.rstrip().endswith(CONFIG_ERROR_HEADER)]
    assert len(headers) == 1, f"expected one line ending in {CONFIG_ERROR_HEADER!r}:\n{stderr}"
    problems: dict[str, str] = {}
    for line in lines[headers[0] + 1:]:
        if line.startswith("    "):
            continue
        if not line.startswith("  - "):
            break
        variable, _, problem = line[4:].rstrip().partition(": ")
        assert variable not in problems, f"{variable} named twice:\n{stderr}"
        problems[variable] = problem
    return problems


def test_several_bad_variables_named_in_one_error(janitor, emu, seeded):
    bad = {
        "DRY_RUN": "maybe",
        "UNTAGGED_MAX_AGE_DAYS": "abc",
        "MAX_CONCURRENCY": "0",
        "INCLUDE_REPOSITORIES": "a,,b",
        "UNTAGGED_MAX_COUNT": "0",
    }
    run = janitor.sweep(env=bad)
    assert_refused(run, emu, seeded, list(bad))
    problems = problem_lines(run.stderr)
    assert sorted(problems) == sorted(bad), run.stderr
    for variable, value in bad.items():
        assert problems[variable].startswith(json.dumps(value) + " "), (variable, problems[variable])


def test_bad_env_also_refused_by_plan(janitor, emu, tmp_path):
    images = janitor.write_json({"imageDetails": []})
    run = janitor.plan("--images", str(images), env={"UNTAGGED_MAX_AGE_DAYS": "abc"})
    assert run.code == 2, run.describe()
    assert_names(run.stderr, ["UNTAGGED_MAX_AGE_DAYS"])


BAD_EVENTS = [
    pytest.param({"dryRun": True, "force": True}, {"DRY_RUN": "false"}, id="unknown-field"),
    pytest.param({"dryrun": True}, {"DRY_RUN": "false"}, id="misspelt-field"),
    pytest.param({"dryRun": "yes"}, {"DRY_RUN": "false"}, id="dry-run-wrong-type"),
    pytest.param({"repositories": "svc"}, {"DRY_RUN": "false"}, id="repositories-wrong-type"),
    pytest.param({"repositories": [1, 2]}, {"DRY_RUN": "false"}, id="repositories-not-strings"),
    pytest.param({"dryRun": False}, {"DRY_RUN": "true"}, id="dry-run-false-when-configured-true"),
    pytest.param({"dryRun": False}, {}, id="dry-run-false-when-default-true"),
    pytest.param(["svc"], {"DRY_RUN": "false"}, id="not-an-object"),
    pytest.param(scheduled_event({"repositories": ["svc"], "deleteEverything": True}),
                 {"DRY_RUN": "false"}, id="eventbridge-unknown-detail-field"),
    pytest.param(scheduled_event({"dryRun": False}), {"DRY_RUN": "true"}, id="eventbridge-dry-run-false"),
]


@pytest.mark.parametrize("event,env", BAD_EVENTS)
def test_bad_event(janitor, emu, seeded, event, env):
    run = janitor.sweep(env=env, event=event)
    assert_refused(run, emu, seeded)


def test_event_file_not_json(janitor, emu, seeded):
    run = janitor.sweep(env={"DRY_RUN": "false"}, event=janitor.write_json("{dryRun: true"))
    assert_refused(run, emu, seeded)


def test_event_file_missing(janitor, emu, seeded, tmp_path):
    run = janitor.sweep("--event", str(tmp_path / "nope.json"), env={"DRY_RUN": "false"})
    assert_refused(run, emu, seeded)


# The Lambda binary at cold start, as Lambda starts it (its reserved variables set) but with
# no runtime API to talk to: a bad configuration must be refused, readably, before anything else.
LAMBDA_RESERVED = {
    "AWS_LAMBDA_FUNCTION_NAME": "ecr-janitor",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ecr-janitor",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/30/[$LATEST]0123456789abcdef",
    "AWS_LAMBDA_RUNTIME_API": None,  # unset
}
BOOTSTRAP_TIMEOUT = 60


def test_bootstrap_reports_bad_configuration(bootstrap_bin, janitor, emu, seeded):
    bad = {"UNTAGGED_MAX_AGE_DAYS": "abc", "DRY_RUN": "maybe"}
    try:
        run = janitor.run(binary=bootstrap_bin, env={**LAMBDA_RESERVED, **bad}, timeout=BOOTSTRAP_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        stderr = (e.stderr or b"").decode(errors="replace")
        pytest.fail(f"bootstrap with a bad configuration was still running after {BOOTSTRAP_TIMEOUT}s:\n"
                    f"{stderr[-4000:]}", pytrace=False)
    stderr = plain(run.stderr)

    assert run.code != 0, run.describe()
    assert emu.request_counts() == {}, f"ECR was called: {emu.request_counts()}\n{run.describe()}"
    assert emu.snapshot() == seeded, "something was deleted"
    assert "ConfigError {" not in stderr and "Problem {" not in stderr, "Rust debug output:\n" + run.describe()
    problems = problem_lines(stderr)
    assert sorted(problems) == sorted(bad), run.describe()
    assert problems["UNTAGGED_MAX_AGE_DAYS"].startswith('"abc" is not a whole number; '), run.describe()
    assert problems["DRY_RUN"] == '"maybe" is not accepted; expected true or false', run.describe()
    # Word for word what the CLI says about the same variables.
    assert problems == problem_lines(janitor.sweep(env=bad).stderr)
