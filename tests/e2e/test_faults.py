"""ECR answering errors: throttling is retried and the run completes; a
repository that fails is reported (exit 1) without stopping the others; a
registry that cannot be listed is a failed run (exit 1) that deletes nothing."""

from __future__ import annotations

import pytest

from ecr_emulator import days_ago
from e2e_helpers import expired_digests, remaining, repo_entry, sweep_checked
from seeding import seed_repositories


def seed(emu, names=("a/one", "b/two", "c/three")):
    """Per repository: 3 images a default sweep expires, 2 it keeps."""
    return seed_repositories(emu, names, old=3)


def test_throttling_is_retried_and_the_run_completes(janitor, emu):
    expected = seed(emu)
    emu.inject_fault("DescribeImages", times=2)
    emu.inject_fault("BatchDeleteImage", times=2)
    emu.inject_fault("DescribeRepositories", times=1)

    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})

    assert report["complete"] is True
    assert report["totals"]["repositoryErrors"] == 0 and report["totals"]["failed"] == 0
    for name, (olds, keep) in expected.items():
        assert remaining(emu, name) == keep, name
        assert expired_digests(report, name) == olds
    assert emu.pending_faults() == 0, "the injected faults were not all hit"
    counts = emu.request_counts()
    assert counts["DescribeImages"] >= 3 + 2
    assert counts["BatchDeleteImage"] >= 3 + 2


def test_throttling_on_many_pages(janitor, emu):
    olds = {emu.push_image("big", pushed_at=days_ago(30)) for _ in range(350)}
    keep = emu.push_image("big", pushed_at=days_ago(1))
    emu.inject_fault("DescribeImages", times=2)
    emu.inject_fault("BatchDeleteImage", times=2)
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert remaining(emu, "big") == {keep}
    assert expired_digests(report, "big") == olds


def test_server_errors_are_retried(janitor, emu):
    expected = seed(emu, names=("svc",))
    emu.inject_fault("DescribeImages", times=1, status=500, code="ServerException", message="Internal error")
    emu.inject_fault("BatchDeleteImage", times=1, status=503, code="ServiceUnavailableException",
                     message="Service unavailable")
    sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert remaining(emu, "svc") == expected["svc"].kept


def test_a_failing_repository_is_reported_and_others_still_swept(janitor, emu):
    expected = seed(emu)
    emu.inject_fault("DescribeImages", times=100, code="AccessDeniedException",
                     message="User is not authorized to perform: ecr:DescribeImages", repository="b/two")

    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=1)

    entry = repo_entry(report, "b/two")
    assert entry.get("error"), entry
    assert entry["expired"] == [] and entry["deleted"] == 0
    assert report["totals"]["repositoryErrors"] == 1
    olds, keep = expected["b/two"]
    assert remaining(emu, "b/two") == olds | keep
    for name in ("a/one", "c/three"):
        assert remaining(emu, name) == expected[name].kept, name


def test_a_failing_batch_delete_is_reported(janitor, emu):
    expected = seed(emu)
    emu.inject_fault("BatchDeleteImage", times=100, code="AccessDeniedException",
                     message="User is not authorized to perform: ecr:BatchDeleteImage", repository="a/one")
    # A BatchDeleteImage call that fails as a whole is a repository error (exit 1), not
    # per-image failures: those are for images ECR itself refused inside a successful call.
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=1)
    entry = repo_entry(report, "a/one")
    assert entry.get("error"), entry
    assert "AccessDenied" in entry["error"] or "not authorized" in entry["error"], entry["error"]
    assert entry["deleted"] == 0 and entry["failures"] == [] and entry["bytesFreed"] == 0, entry
    assert report["totals"]["repositoryErrors"] == 1
    assert [r["name"] for r in report["repositories"] if r.get("error")] == ["a/one"]
    olds, keep = expected["a/one"]
    assert remaining(emu, "a/one") == olds | keep
    for name in ("b/two", "c/three"):
        assert remaining(emu, name) == expected[name].kept, name


def test_listing_repositories_fails(janitor, emu):
    seed(emu)
    before = emu.snapshot()
    emu.inject_fault("DescribeRepositories", times=100, code="AccessDeniedException",
                     message="User is not authorized to perform: ecr:DescribeRepositories")
    run = janitor.sweep(env={"DRY_RUN": "false"})
    assert run.code == 1, run.describe()
    assert emu.snapshot() == before
    assert emu.request_counts().get("BatchDeleteImage", 0) == 0
    assert "DescribeImages" not in emu.request_counts()
    assert run.stderr.strip()


@pytest.mark.slow
def test_persistent_throttling_on_one_repository_is_a_repository_error(janitor, emu):
    expected = seed(emu)
    emu.inject_fault("DescribeImages", times=1000, repository="c/three")
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=1)
    assert repo_entry(report, "c/three").get("error")
    for name in ("a/one", "b/two"):
        assert remaining(emu, name) == expected[name].kept, name
