"""Bad configuration or a bad event: exit 2, the error names the problem, not
one ECR request is made and nothing is deleted."""

from __future__ import annotations

import json

import pytest

from ecr_emulator import days_ago
from e2e_helpers import assert_names, plain, scheduled_event

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


def test_several_bad_variables_named_in_one_error(janitor, emu, seeded):
    run = janitor.sweep(env={
        "DRY_RUN": "maybe",
        "UNTAGGED_MAX_AGE_DAYS": "abc",
        "MAX_CONCURRENCY": "0",
        "INCLUDE_REPOSITORIES": "a,,b",
        "UNTAGGED_MAX_COUNT": "0",
    })
    assert_refused(run, emu, seeded, ["DRY_RUN", "UNTAGGED_MAX_AGE_DAYS", "MAX_CONCURRENCY",
                                      "INCLUDE_REPOSITORIES", "UNTAGGED_MAX_COUNT"])
    errors = [line for line in plain(run.stderr).splitlines() if "error" in line.lower()]
    assert errors, run.stderr


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
