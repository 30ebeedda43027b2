"""`ecr-janitor sweep` against the emulator: what is deleted, what is kept,
and that the report agrees with what is left in the registry."""

from __future__ import annotations

import pytest

import random
from datetime import datetime, timedelta, timezone

from ecr_emulator import days_ago
from e2e_helpers import (
    expired_digests,
    kept_digests,
    remaining,
    repo_entry,
    sweep_checked,
)
from seeding import CI_HISTORY_SEED, DEFAULT_MAX_AGE_DAYS, MB, ci_history, expires_by_default


def test_old_untagged_deleted_recent_kept_tagged_untouched(janitor, emu):
    limit = DEFAULT_MAX_AGE_DAYS  # UNTAGGED_MAX_AGE_DAYS unset
    old = {emu.push_image("web/frontend", pushed_at=days_ago(d), size=100 * MB)
           for d in (limit + 1, 2 * limit + 2, 6 * limit + 6)}
    recent = {emu.push_image("web/frontend", pushed_at=days_ago(d)) for d in (0.1, limit / 3, limit - 1)}
    tagged = {emu.push_image("web/frontend", [f"v{d}"], pushed_at=days_ago(d)) for d in (1, 3 * limit, 30 * limit)}
    other_old = emu.push_image("api/orders", pushed_at=days_ago(limit + 6), size=50 * MB)
    other_tagged = emu.push_image("api/orders", ["latest"], pushed_at=days_ago(200))

    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})

    assert report["dryRun"] is False and report["complete"] is True
    assert remaining(emu, "web/frontend") == recent | tagged
    assert remaining(emu, "api/orders") == {other_tagged}
    assert expired_digests(report, "web/frontend") == old
    assert expired_digests(report, "api/orders") == {other_old}
    assert [r["name"] for r in report["repositories"]] == ["api/orders", "web/frontend"]
    totals = report["totals"]
    assert totals["deleted"] == 4 and totals["expired"] == 4 and totals["failed"] == 0
    assert totals["bytesExpired"] == totals["bytesFreed"] == 350 * MB
    assert totals["estimatedMonthlySavingUsd"] > 0
    assert report["notVisited"] == [] and report["requestedNotFound"] == []


def test_ci_history_with_the_default_retention(janitor, emu):
    """The registry `make demo` sweeps: exactly the untagged images older than the default
    retention go, in every repository, except that images which follow others (index
    children, signatures) follow them."""
    now = datetime.now(timezone.utc)
    followers = ci_history(emu, now, random.Random(CI_HISTORY_SEED))
    images = {repo: emu.images(repo) for repo in emu.repositories()}
    boundary = now - timedelta(days=DEFAULT_MAX_AGE_DAYS)
    near = [d for imgs in images.values() for d, i in imgs.items()
            if abs(i["imagePushedAt"] - boundary) < timedelta(minutes=10)]
    assert not near, "an image is pushed within minutes of the age limit: the result would depend on timing"
    expected = {repo: followers.get(repo, {d for d, i in imgs.items() if expires_by_default(i, now)})
                for repo, imgs in images.items()}
    assert all(expected.values()), f"every repository should have something to expire: {expected}"

    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})

    assert [r["name"] for r in report["repositories"]] == sorted(images)
    for repo, imgs in images.items():
        assert expired_digests(report, repo) == expected[repo], repo
        assert remaining(emu, repo) == set(imgs) - expected[repo], repo
    assert report["totals"]["deleted"] == sum(map(len, expected.values()))


def test_untagged_max_age_days_setting(janitor, emu):
    older = {emu.push_image("svc", pushed_at=days_ago(d)) for d in (3.5, 10)}
    newer = {emu.push_image("svc", pushed_at=days_ago(d)) for d in (0.5, 2.5)}
    sweep_checked(janitor, emu, env={"DRY_RUN": "false", "UNTAGGED_MAX_AGE_DAYS": "3"})
    assert remaining(emu, "svc") == newer
    assert not older & remaining(emu, "svc")


@pytest.mark.parametrize("age", ["off", "0"])
def test_count_limit_keeps_newest_untagged(janitor, emu, age):
    untagged = [emu.push_image("svc", pushed_at=days_ago(d)) for d in (1, 2, 3, 4, 5, 6, 30)]
    tagged = {emu.push_image("svc", [f"t{d}"], pushed_at=days_ago(d)) for d in (7, 8, 9, 10)}
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "UNTAGGED_MAX_COUNT": "3",
                                              "UNTAGGED_MAX_AGE_DAYS": age})
    assert remaining(emu, "svc") == set(untagged[:3]) | tagged
    assert expired_digests(report, "svc") == set(untagged[3:])


def test_age_and_count_limits_together_expire_the_union(janitor, emu):
    newest = [emu.push_image("svc", pushed_at=days_ago(d)) for d in (1, 2, 3)]
    over_count = emu.push_image("svc", pushed_at=days_ago(4))  # recent, but beyond the newest 3
    too_old = {emu.push_image("svc", pushed_at=days_ago(d)) for d in (20, 30)}
    tagged = emu.push_image("svc", ["release-1"], pushed_at=days_ago(300))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "UNTAGGED_MAX_COUNT": "3",
                                              "UNTAGGED_MAX_AGE_DAYS": "14"})
    assert remaining(emu, "svc") == set(newest) | {tagged}
    assert expired_digests(report, "svc") == too_old | {over_count}


def test_dry_run_is_the_default_and_deletes_nothing(janitor, emu):
    old = {emu.push_image("svc", pushed_at=days_ago(d)) for d in (20, 40)}
    recent = {emu.push_image("svc", pushed_at=days_ago(1))}
    tagged = {emu.push_image("svc", ["latest"], pushed_at=days_ago(100))}
    everything = old | recent | tagged

    report = sweep_checked(janitor, emu)  # DRY_RUN unset: defaults to true

    assert report["dryRun"] is True
    assert remaining(emu, "svc") == everything
    assert expired_digests(report, "svc") == old
    entry = repo_entry(report, "svc")
    assert entry["deleted"] == 0
    # Every image is listed (tagged indexes tell which untagged images are their children),
    # and each one is explained.
    assert kept_digests(report, "svc") == recent | tagged
    assert entry["imagesScanned"] == len(everything)
    assert entry["untaggedScanned"] == len(old | recent)
    for e in entry["expired"]:
        assert e["reason"]
    for k in entry["kept"]:
        assert k["reason"]
    assert report["totals"]["expired"] == 2 and report["totals"]["deleted"] == 0
    assert emu.request_counts().get("BatchDeleteImage", 0) == 0


def test_dry_run_true_explicitly(janitor, emu):
    old = emu.push_image("svc", pushed_at=days_ago(20))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "true"})
    assert report["dryRun"] is True
    assert remaining(emu, "svc") == {old}
    assert expired_digests(report, "svc") == {old}
    assert emu.request_counts().get("BatchDeleteImage", 0) == 0


def test_dry_run_flag_overrides_env(janitor, emu):
    old = emu.push_image("svc", pushed_at=days_ago(20))
    report = sweep_checked(janitor, emu, "--dry-run", env={"DRY_RUN": "false"})
    assert report["dryRun"] is True
    assert remaining(emu, "svc") == {old}
    assert expired_digests(report, "svc") == {old}
    assert emu.request_counts().get("BatchDeleteImage", 0) == 0


def test_include_and_exclude_globs(janitor, emu):
    repos = ["team-a/web", "team-a/api", "team-a/deep/nested", "team-b/web", "legacy", "legacy-2"]
    old = {name: emu.push_image(name, pushed_at=days_ago(30)) for name in repos}
    report = sweep_checked(janitor, emu, env={
        "DRY_RUN": "false",
        "INCLUDE_REPOSITORIES": "team-a*,legacy",
        "EXCLUDE_REPOSITORIES": "team-a/api",
    })
    swept = {"team-a/web", "team-a/deep/nested", "legacy"}  # `*` also matches `/`
    left_alone = set(repos) - swept  # excluded (team-a/api) or never included (team-b/web, legacy-2)
    listed = [r["name"] for r in report["repositories"]]
    assert listed == sorted(swept), "the report must list exactly the swept repositories"
    assert not left_alone & set(listed), f"repositories that were not swept are in the report: {listed}"
    for name in swept:
        assert remaining(emu, name) == set(), name
        assert expired_digests(report, name) == {old[name]}, name
    for name in left_alone:
        assert remaining(emu, name) == {old[name]}, name
    touched = {r.repository for r in emu.request_log()}
    assert swept <= touched, touched  # the log names repositories, so the next check means something
    assert not left_alone & touched, f"ECR was called about {sorted(left_alone & touched)}"


def test_exclude_wins_over_include_and_star_matches_slash(janitor, emu):
    repos = ["a/b/c", "a/x", "b/y", "c"]
    old = {name: emu.push_image(name, pushed_at=days_ago(30)) for name in repos}
    sweep_checked(janitor, emu, env={"DRY_RUN": "false", "INCLUDE_REPOSITORIES": "*",
                                     "EXCLUDE_REPOSITORIES": "a/*,c"})
    assert remaining(emu, "a/b/c") == {old["a/b/c"]}
    assert remaining(emu, "a/x") == {old["a/x"]}
    assert remaining(emu, "c") == {old["c"]}
    assert remaining(emu, "b/y") == set()


def test_retagged_image_becomes_untagged_and_expires(janitor, emu):
    # CI pushes build 1 as `latest` a month ago, then build 2 takes `latest`.
    build1 = emu.push_image("web/app", ["latest", "sha-1111111"], pushed_at=days_ago(30), via_api=True)
    build2 = emu.push_image("web/app", ["latest"], pushed_at=days_ago(20), via_api=True)
    build3 = emu.push_image("web/app", ["latest"], via_api=True)
    assert emu.snapshot()["web/app"] == {build1: {"sha-1111111"}, build2: set(), build3: {"latest"}}

    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    # build1 still carries its sha tag: untouched. build2 lost its only tag and was pushed
    # 20 days ago (ECR keeps the push date): expired by age. build3 is tagged.
    assert remaining(emu, "web/app") == {build1, build3}
    assert expired_digests(report, "web/app") == {build2}

    # Later a rebuild takes the sha tag too: build1 becomes untagged, and the next run expires it.
    build4 = emu.push_image("web/app", ["sha-1111111"], via_api=True)
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert remaining(emu, "web/app") == {build3, build4}
    assert expired_digests(report, "web/app") == {build1}


def test_empty_registry(janitor, emu):
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert report["repositories"] == [] and report["totals"]["repositories"] == 0
    assert report["complete"] is True


def test_second_run_finds_nothing_more(janitor, emu):
    for d in (20, 30):
        emu.push_image("svc", pushed_at=days_ago(d))
    keep = emu.push_image("svc", pushed_at=days_ago(1))
    sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert report["totals"]["expired"] == 0
    assert remaining(emu, "svc") == {keep}


def test_per_image_delete_failure_is_reported_and_exit_0(janitor, emu):
    refused = emu.push_image("svc", pushed_at=days_ago(30))
    deletable = emu.push_image("svc", pushed_at=days_ago(31))
    emu.protect_image("svc", refused, code="KmsError", reason="The KMS key is disabled")
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=0)
    assert remaining(emu, "svc") == {refused}
    entry = repo_entry(report, "svc")
    assert entry["deleted"] == 1
    assert [(f["imageDigest"], f["failureCode"]) for f in entry["failures"]] == [(refused, "KmsError")]
    assert entry["failures"][0]["failureReason"] == "The KMS key is disabled"
    assert report["totals"]["failed"] == 1
    assert deletable not in remaining(emu, "svc")


def test_listed_by_an_index_at_delete_time_is_held_back_not_a_failure(janitor, emu):
    """ECR answers ImageReferencedByManifestList for an image an index still lists (here
    forced for a plain image, as for an index pushed during the run): the image is reported
    as held back with ECR's reason, not as a failure."""
    listed = emu.push_image("svc", pushed_at=days_ago(30))
    deletable = emu.push_image("svc", pushed_at=days_ago(31))
    emu.protect_image("svc", listed)
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=0)
    assert remaining(emu, "svc") == {listed}
    entry = repo_entry(report, "svc")
    assert entry["failures"] == [] and report["totals"]["failed"] == 0
    assert [h["imageDigest"] for h in entry["heldBack"]] == [listed]
    assert entry["heldBack"][0]["reason"].startswith("held back: an image index lists it")
    assert expired_digests(report, "svc") == {deletable}
    assert report["totals"]["heldBack"] == 1


def test_image_deleted_meanwhile_counts_as_already_gone(janitor, emu):
    vanishing = emu.push_image("svc", pushed_at=days_ago(30))
    other = emu.push_image("svc", pushed_at=days_ago(31))
    emu.vanish_before_delete("svc", vanishing)
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=0)
    entry = repo_entry(report, "svc")
    assert remaining(emu, "svc") == set()
    assert entry["deleted"] == 1 and entry["alreadyGone"] == 1 and entry["failures"] == []
    assert expired_digests(report, "svc") == {vanishing, other}
