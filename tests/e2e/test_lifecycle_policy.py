"""LIFECYCLE_POLICY (a full ECR lifecycle policy document, with tagged rules)
and REPOSITORY_TAG_OVERRIDES (per-repository skip / named policy)."""

from __future__ import annotations

import json

import pytest

from ecr_emulator import days_ago
from e2e_helpers import expired_digests, remaining, repo_entry, sweep_checked

RELEASE_AND_DEV = {"rules": [
    {"rulePriority": 1, "description": "keep the newest 2 release images",
     "selection": {"tagStatus": "tagged", "tagPrefixList": ["release"],
                   "countType": "imageCountMoreThan", "countNumber": 2},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "expire dev images after a week",
     "selection": {"tagStatus": "tagged", "tagPatternList": ["dev*"],
                   "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
     "action": {"type": "expire"}},
]}


def test_tagged_rules(janitor, emu):
    push = emu.push_image
    r1 = push("app", ["release-1"], pushed_at=days_ago(30))
    r2 = push("app", ["release-2"], pushed_at=days_ago(20))
    r3 = push("app", ["release-3"], pushed_at=days_ago(10))
    r4 = push("app", ["release-4", "latest"], pushed_at=days_ago(1))
    # Newest-but-one release, also tagged dev-*: rule 1 keeps it, so rule 2 (lower
    # priority) may not expire it although it is older than 7 days.
    rz = push("app", ["release-5", "dev-z"], pushed_at=days_ago(8))
    dev_old = push("app", ["dev-a"], pushed_at=days_ago(10))
    dev_new = push("app", ["dev-b"], pushed_at=days_ago(3))
    main = push("app", ["main"], pushed_at=days_ago(40))  # no rule selects it
    untagged = push("app", pushed_at=days_ago(100))  # no untagged rule: kept

    env = {"DRY_RUN": "false", "LIFECYCLE_POLICY": json.dumps(RELEASE_AND_DEV)}
    report = sweep_checked(janitor, emu, env=env)

    assert remaining(emu, "app") == {r4, rz, dev_new, main, untagged}
    entry = repo_entry(report, "app")
    by_digest = {e["imageDigest"]: e for e in entry["expired"]}
    assert set(by_digest) == {r1, r2, r3, dev_old}
    assert {d: by_digest[d]["appliedRulePriority"] for d in by_digest} == {r1: 1, r2: 1, r3: 1, dev_old: 2}
    assert sorted(by_digest[r3]["imageTags"]) == ["release-3"]


def test_tagged_rules_dry_run_explains_kept_images(janitor, emu):
    push = emu.push_image
    old_release = push("app", ["release-1"], pushed_at=days_ago(30))
    push("app", ["release-2"], pushed_at=days_ago(20))
    push("app", ["release-3"], pushed_at=days_ago(10))
    main = push("app", ["main"], pushed_at=days_ago(40))
    untagged = push("app", pushed_at=days_ago(100))
    report = sweep_checked(janitor, emu, env={"LIFECYCLE_POLICY": json.dumps(RELEASE_AND_DEV)})
    assert report["dryRun"] is True
    assert expired_digests(report, "app") == {old_release}
    kept = {k["imageDigest"]: k for k in repo_entry(report, "app")["kept"]}
    assert main in kept and untagged in kept
    assert kept[main]["rulePriority"] is None
    assert kept[untagged]["rulePriority"] is None
    assert len(remaining(emu, "app")) == 5


def test_expired_images_still_count_for_lower_priority_rules(janitor, emu):
    """ECR: rules "can never mark images that are marked by higher priority rules, but can
    still identify them as if they haven't been expired" - so an untagged image expired by
    rule 1 still takes one of the 3 places counted by rule 2."""
    policy = {"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                          "countUnit": "days", "countNumber": 3},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                          "countNumber": 3},
         "action": {"type": "expire"}},
    ]}
    t1 = emu.push_image("app", ["t1"], pushed_at=days_ago(1))
    u1 = emu.push_image("app", pushed_at=days_ago(4))
    t2 = emu.push_image("app", ["t2"], pushed_at=days_ago(5))
    t3 = emu.push_image("app", ["t3"], pushed_at=days_ago(6))
    t4 = emu.push_image("app", ["t4"], pushed_at=days_ago(7))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "LIFECYCLE_POLICY": json.dumps(policy)})
    assert remaining(emu, "app") == {t1, t2}
    by_digest = {e["imageDigest"]: e["appliedRulePriority"] for e in repo_entry(report, "app")["expired"]}
    assert by_digest == {u1: 1, t3: 2, t4: 2}


def test_untagged_count_rule_in_a_policy(janitor, emu):
    policy = {"rules": [{"rulePriority": 10, "selection": {
        "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 2},
        "action": {"type": "expire"}}]}
    newest = [emu.push_image("app", pushed_at=days_ago(d)) for d in (1, 2)]
    older = {emu.push_image("app", pushed_at=days_ago(d)) for d in (3, 4, 5)}
    tagged = emu.push_image("app", ["v1"], pushed_at=days_ago(50))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "LIFECYCLE_POLICY": json.dumps(policy)})
    assert remaining(emu, "app") == set(newest) | {tagged}
    assert expired_digests(report, "app") == older


# ---------------------------------------------------------------------------
# REPOSITORY_TAG_OVERRIDES (optional feature: per-repository resource tags)
# ---------------------------------------------------------------------------

STRICT = {"rules": [{"rulePriority": 1, "selection": {
    "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
    "action": {"type": "expire"}}]}


@pytest.mark.tag_overrides
def test_tag_override_skip(janitor, emu):
    emu.create_repository("skipped/repo", tags={"ecr-janitor:skip": "true"})
    skipped_old = emu.push_image("skipped/repo", pushed_at=days_ago(60))
    normal_old = emu.push_image("normal/repo", pushed_at=days_ago(60))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "REPOSITORY_TAG_OVERRIDES": "true"})
    assert remaining(emu, "skipped/repo") == {skipped_old}
    assert remaining(emu, "normal/repo") == set()
    assert expired_digests(report, "normal/repo") == {normal_old}
    assert [r["name"] for r in report["repositories"]] == ["normal/repo", "skipped/repo"]
    skipped = repo_entry(report, "skipped/repo")
    assert "ecr-janitor:skip" in (skipped.get("skipped") or ""), skipped
    assert not skipped.get("error"), skipped
    assert skipped["expired"] == [] and skipped["deleted"] == 0, skipped
    assert report["totals"]["repositoryErrors"] == 0
    # Skipped on its tags alone: its images are never listed.
    described = {r.repository for r in emu.request_log() if r.action == "DescribeImages"}
    assert described == {"normal/repo"}, described


@pytest.mark.tag_overrides
def test_tag_override_named_policy(janitor, emu):
    emu.create_repository("strict/repo", tags={"ecr-janitor:policy": "strict"})
    strict = [emu.push_image("strict/repo", pushed_at=days_ago(d)) for d in (1, 2, 3)]
    default = [emu.push_image("default/repo", pushed_at=days_ago(d)) for d in (1, 2, 30)]
    env = {"DRY_RUN": "false", "REPOSITORY_TAG_OVERRIDES": "true",
           "LIFECYCLE_POLICIES": json.dumps({"strict": STRICT})}
    report = sweep_checked(janitor, emu, env=env)
    assert remaining(emu, "strict/repo") == {strict[0]}
    assert remaining(emu, "default/repo") == set(default[:2])
    assert expired_digests(report, "strict/repo") == set(strict[1:])


@pytest.mark.tag_overrides
def test_tags_ignored_without_the_switch(janitor, emu):
    emu.create_repository("skipped/repo", tags={"ecr-janitor:skip": "true"})
    emu.push_image("skipped/repo", pushed_at=days_ago(60))
    sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert remaining(emu, "skipped/repo") == set()
    assert emu.request_counts().get("ListTagsForResource", 0) == 0


@pytest.mark.tag_overrides
def test_unknown_policy_name_leaves_the_repository_alone(janitor, emu):
    emu.create_repository("odd/repo", tags={"ecr-janitor:policy": "nonexistent"})
    odd = emu.push_image("odd/repo", pushed_at=days_ago(60))
    other = emu.push_image("other/repo", pushed_at=days_ago(60))
    # A repository naming a policy that does not exist is that repository's error (exit 1);
    # the other repositories are still swept.
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "REPOSITORY_TAG_OVERRIDES": "true",
                                              "LIFECYCLE_POLICIES": json.dumps({"strict": STRICT})},
                           expect_code=1)
    assert remaining(emu, "odd/repo") == {odd}, "a repository naming an unknown policy was swept"
    entry = repo_entry(report, "odd/repo")
    assert "nonexistent" in (entry.get("error") or ""), entry
    assert not entry.get("skipped") and entry["expired"] == [] and entry["deleted"] == 0, entry
    assert report["totals"]["repositoryErrors"] == 1
    assert remaining(emu, "other/repo") == set()
    assert expired_digests(report, "other/repo") == {other}
