"""Pagination and batching at ECR's limits: more than 1,000 images in one
repository, more than 1,000 repositories, more than 100 deletions at once."""

from __future__ import annotations

import math

import pytest

from ecr_emulator import days_ago
from e2e_helpers import expired_digests, remaining, repo_entry, sweep_checked

pytestmark = pytest.mark.slow


def test_more_than_1000_images_in_one_repository(janitor, emu):
    old = {emu.push_image("big/repo", pushed_at=days_ago(30 + i % 50), size=1000 + i) for i in range(1100)}
    tagged = {emu.push_image("big/repo", [f"v{i}"], pushed_at=days_ago(60)) for i in range(5)}
    recent = {emu.push_image("big/repo", pushed_at=days_ago(1)) for _ in range(3)}

    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})

    assert remaining(emu, "big/repo") == tagged | recent
    assert expired_digests(report, "big/repo") == old
    entry = repo_entry(report, "big/repo")
    assert entry["deleted"] == 1100
    assert entry["untaggedScanned"] == 1103
    counts = emu.request_counts()
    # 1,108 images: two listing pages of at most 1,000, then one re-check per delete batch.
    assert counts["DescribeImages"] == 2 + math.ceil(1100 / 100), counts
    assert counts["BatchDeleteImage"] == math.ceil(1100 / 100), counts


def test_more_than_1000_images_dry_run_lists_them_all(janitor, emu):
    old = {emu.push_image("big/repo", pushed_at=days_ago(30)) for _ in range(1050)}
    report = sweep_checked(janitor, emu)
    assert expired_digests(report, "big/repo") == old
    assert remaining(emu, "big/repo") == old


def test_more_than_1000_repositories_all_visited(janitor, emu):
    names = [f"svc-{i:04d}/app" for i in range(1001)]
    old = {}
    for i, name in enumerate(names):
        old[name] = emu.push_image(name, pushed_at=days_ago(30))
        if i % 100 == 0:
            emu.push_image(name, ["latest"], pushed_at=days_ago(30))

    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})

    assert [r["name"] for r in report["repositories"]] == sorted(names)
    assert report["totals"]["repositories"] == 1001
    assert report["totals"]["deleted"] == 1001
    assert report["complete"] is True and report["notVisited"] == []
    snapshot = emu.snapshot()
    assert all(old[name] not in snapshot[name] for name in names)
    assert sum(len(images) for images in snapshot.values()) == 11  # the tagged ones
    counts = emu.request_counts()
    assert counts["DescribeRepositories"] >= 2, counts  # at most 1,000 per page
    assert counts["DescribeImages"] >= 1001, counts


@pytest.mark.parametrize("count", [101, 250])
def test_deletions_are_batched_by_100(janitor, emu, count):
    old = {emu.push_image("svc", pushed_at=days_ago(20)) for _ in range(count)}
    keep = emu.push_image("svc", pushed_at=days_ago(2))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert remaining(emu, "svc") == {keep}
    assert repo_entry(report, "svc")["deleted"] == count
    assert expired_digests(report, "svc") == old
    assert emu.request_counts()["BatchDeleteImage"] == math.ceil(count / 100)


def test_concurrency_1_gives_the_same_result(janitor, emu):
    names = [f"r{i:02d}" for i in range(20)]
    for name in names:
        emu.push_image(name, pushed_at=days_ago(20))
        emu.push_image(name, pushed_at=days_ago(1))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "MAX_CONCURRENCY": "1"})
    assert report["totals"]["deleted"] == 20
    assert all(len(images) == 1 for images in emu.snapshot().values())


@pytest.mark.parametrize("limit", [1, 3])
def test_max_concurrency_is_respected(janitor, emu, limit):
    for i in range(12):
        emu.push_image(f"r{i:02d}", pushed_at=days_ago(20))
    emu.latency = 0.05  # make overlapping requests observable
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "MAX_CONCURRENCY": str(limit)})
    assert report["totals"]["deleted"] == 12
    assert emu.max_in_flight() <= limit, f"{emu.max_in_flight()} requests at once with MAX_CONCURRENCY={limit}"
    if limit > 1:
        assert emu.max_in_flight() > 1, "repositories were swept one at a time"
