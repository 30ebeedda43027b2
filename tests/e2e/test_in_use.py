"""Images in use by ECS (running tasks, service deployments) and Lambda (image functions)
are never deleted; a failed lookup deletes nothing; and the brakes on runaway deletes."""

from __future__ import annotations

import json

from ecr_emulator import days_ago
from e2e_helpers import expired_digests, remaining, repo_entry, sweep_checked

LIVE = {"DRY_RUN": "false"}


def superseded(emu, repo="app"):
    """An image pushed as v1 a month ago whose tag then moved to a new build: the old one is
    untagged and past the retention. Returns (old, new)."""
    old = emu.push_image(repo, ["v1"], pushed_at=days_ago(30))
    new = emu.push_image(repo, ["v1"], pushed_at=days_ago(1))
    return old, new


def reasons(report, repo):
    return {k["imageDigest"]: k["reason"] for k in repo_entry(report, repo)["kept"]}


def test_a_running_task_keeps_the_digest_it_started_with(janitor, emu):
    old = emu.push_image("app", ["v1"], pushed_at=days_ago(30))
    emu.ecs_run_task("prod", emu.image_uri("app", tag="v1"))
    new = emu.push_image("app", ["v1"], pushed_at=days_ago(1))  # the tag moves on
    idle = emu.push_image("app", pushed_at=days_ago(30))
    dry = sweep_checked(janitor, emu)
    assert reasons(dry, "app")[old].startswith("in use by ECS task prod/")
    report = sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "app") == {old, new}
    assert expired_digests(report, "app") == {idle}
    assert repo_entry(report, "app")["protectedInUse"] == 1
    assert report["totals"]["protectedInUse"] == 1
    assert report["inUse"] == {"ecs": True, "lambda": True, "references": 1}


def test_a_service_deployment_keeps_the_image_its_task_definition_names(janitor, emu):
    old, new = superseded(emu)
    emu.ecs_service("prod", "api", emu.image_uri("app", digest=old))
    dry = sweep_checked(janitor, emu)
    assert reasons(dry, "app")[old] == "in use by ECS service prod/api"
    sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "app") == {old, new}


def test_lambda_latest_and_an_older_published_version_keep_their_images(janitor, emu):
    v1 = emu.push_image("fn", ["v1"], pushed_at=days_ago(40))
    emu.lambda_image_function("worker", emu.image_uri("fn", tag="v1"), publish=True)  # version 1
    v2 = emu.push_image("fn", ["v2"], pushed_at=days_ago(20))
    emu.lambda_update_image("worker", emu.image_uri("fn", tag="v2"))  # $LATEST
    # Both tags move away: both images are untagged and past the retention.
    emu.push_image("fn", ["v1", "v2"], pushed_at=days_ago(1))
    idle = emu.push_image("fn", pushed_at=days_ago(40))
    dry = sweep_checked(janitor, emu)
    why = reasons(dry, "fn")
    assert why[v1] == "in use by Lambda function worker:1"
    assert why[v2] == "in use by Lambda function worker:$LATEST"
    report = sweep_checked(janitor, emu, env=LIVE)
    assert expired_digests(report, "fn") == {idle}
    assert {v1, v2} <= remaining(emu, "fn")


def test_aliased_mode_protects_only_latest_and_what_aliases_point_to(janitor, emu):
    images = {}
    for n in (1, 2, 3, 4):
        images[n] = emu.push_image("fn", [f"b{n}"], pushed_at=days_ago(50 - n))
        if n == 1:
            emu.lambda_image_function("worker", emu.image_uri("fn", tag="b1"), publish=True)
        else:
            emu.lambda_update_image("worker", emu.image_uri("fn", tag=f"b{n}"), publish=n < 4)
    emu.lambda_alias("worker", "live", "3", extra_weights={"2": 0.1})
    emu.push_image("fn", ["b1", "b2", "b3", "b4"], pushed_at=days_ago(1))  # every tag moves on

    aliased = sweep_checked(janitor, emu, env={"PROTECT_LAMBDA_VERSIONS": "aliased"})
    assert expired_digests(aliased, "fn") == {images[1]}, "version 1: no alias points to it"
    why = reasons(aliased, "fn")
    assert why[images[4]] == "in use by Lambda function worker:$LATEST"
    assert why[images[3]].startswith("in use by Lambda function worker:")
    everything = sweep_checked(janitor, emu)
    assert expired_digests(everything, "fn") == set(), "all: every published version counts"
    sweep_checked(janitor, emu, env={**LIVE, "PROTECT_LAMBDA_VERSIONS": "aliased"})
    assert images[1] not in remaining(emu, "fn")
    assert {images[2], images[3], images[4]} <= remaining(emu, "fn")


def test_a_failed_ecs_lookup_deletes_nothing_and_fails_the_run(janitor, emu):
    old, new = superseded(emu)
    idle = emu.push_image("other", pushed_at=days_ago(40))
    emu.fail_service("ecs")
    report = sweep_checked(janitor, emu, env=LIVE, expect_code=1)
    assert "ListClusters" in report["safetyStop"] and "AccessDenied" in report["safetyStop"]
    assert report["dryRun"] is False
    assert remaining(emu, "app") == {old, new} and remaining(emu, "other") == {idle}
    assert emu.request_counts().get("BatchDeleteImage", 0) == 0
    held = repo_entry(report, "other")["heldBack"]
    assert [h["imageDigest"] for h in held] == [idle]
    assert held[0]["reason"].startswith("held back: safety stop: the in-use lookup failed")


def test_a_failed_lambda_lookup_deletes_nothing_either(janitor, emu):
    old, _ = superseded(emu)
    emu.fail_service("lambda")
    report = sweep_checked(janitor, emu, env=LIVE, expect_code=1)
    assert report["safetyStop"]
    assert old in remaining(emu, "app")


def test_protect_in_use_none_skips_the_lookup_and_deletes_what_the_policy_says(janitor, emu):
    old, new = superseded(emu)
    emu.ecs_run_task("prod", emu.image_uri("app", digest=old))
    emu.fail_service("lambda")  # not even asked
    report = sweep_checked(janitor, emu, env={**LIVE, "PROTECT_IN_USE": "none"})
    assert expired_digests(report, "app") == {old}
    assert remaining(emu, "app") == {new}
    assert report["inUse"] == {"ecs": False, "lambda": False, "references": 0}
    assert emu.request_counts("ecs") == {} and emu.request_counts("lambda") == {}


def test_the_deletion_brake_defers_the_rest_and_a_later_run_finishes(janitor, emu):
    olds = {emu.push_image(f"r{i}", pushed_at=days_ago(30 + j)) for i in range(3) for j in range(2)}
    env = {**LIVE, "MAX_DELETIONS_PER_RUN": "4"}
    first = sweep_checked(janitor, emu, env=env)
    assert first["complete"] is False
    assert (first["totals"]["deleted"], first["totals"]["deferred"]) == (4, 2)
    assert first["brakes"]["maxDeletionsPerRun"] == 4 and first["brakes"]["maxDeletionsPerRunTripped"]
    deferred = {d["imageDigest"] for r in first["repositories"] for d in r.get("deferred", [])}
    assert len(deferred) == 2 and deferred <= olds
    assert {d for r in ("r0", "r1", "r2") for d in remaining(emu, r)} == deferred
    second = sweep_checked(janitor, emu, env=env)
    assert second["complete"] is True and second["totals"]["deleted"] == 2
    assert all(remaining(emu, r) == set() for r in ("r0", "r1", "r2"))


def test_the_tagged_brake_leaves_the_repository_untouched(janitor, emu):
    releases = [emu.push_image("app", [f"release-{n}"], pushed_at=days_ago(40 - n)) for n in range(4)]
    untagged = emu.push_image("app", pushed_at=days_ago(40))
    other = emu.push_image("other", pushed_at=days_ago(40))
    policy = {"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                          "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPrefixList": ["release"],
                                          "countType": "imageCountMoreThan", "countNumber": 1},
         "action": {"type": "expire"}}]}
    env = {**LIVE, "LIFECYCLE_POLICY": json.dumps(policy)}
    report = sweep_checked(janitor, emu, env=env, expect_code=1)
    entry = repo_entry(report, "app")
    assert entry["errorCode"] == "TaggedDeleteBrake"
    assert "3 of 4 tagged images (75%)" in entry["error"] and "rule 2" in entry["error"]
    assert remaining(emu, "app") == {*releases, untagged}, "untouched, untagged image included"
    assert report["brakes"]["maxTaggedDeletePercentTripped"] == ["app"]
    assert remaining(emu, "other") == set()
    sweep_checked(janitor, emu, env={**env, "MAX_TAGGED_DELETE_PERCENT": "80"})
    assert remaining(emu, "app") == {releases[3]}
