"""Event overrides (`sweep --event FILE`, as the Lambda receives them): they can
only make a run safer."""

from __future__ import annotations

import json

import pytest

from ecr_emulator import days_ago
from e2e_helpers import EVENTS_DIR, event_overrides, expired_digests, remaining, scheduled_event, sweep_checked


@pytest.fixture
def three_repos(emu):
    return {name: emu.push_image(name, pushed_at=days_ago(30)) for name in ("a/one", "b/two", "c")}


def bare(detail):
    return detail


WRAPS = pytest.mark.parametrize("wrap", [bare, scheduled_event], ids=["plain", "eventbridge"])


@WRAPS
def test_event_narrows_to_one_repository(janitor, emu, three_repos, wrap):
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, event=wrap({"repositories": ["b/two"]}))
    assert [r["name"] for r in report["repositories"]] == ["b/two"]
    assert remaining(emu, "b/two") == set()
    assert remaining(emu, "a/one") == {three_repos["a/one"]}
    assert remaining(emu, "c") == {three_repos["c"]}
    assert report["requestedNotFound"] == []


def test_event_repositories_that_do_not_exist_or_are_excluded(janitor, emu, three_repos):
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "EXCLUDE_REPOSITORIES": "c"},
                           event={"repositories": ["a/one", "nope/missing", "c"]})
    assert [r["name"] for r in report["repositories"]] == ["a/one"]
    assert sorted(report["requestedNotFound"]) == ["c", "nope/missing"]
    assert remaining(emu, "a/one") == set()
    assert remaining(emu, "c") == {three_repos["c"]}
    assert remaining(emu, "b/two") == {three_repos["b/two"]}


@WRAPS
def test_event_forces_dry_run(janitor, emu, three_repos, wrap):
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, event=wrap({"dryRun": True}))
    assert report["dryRun"] is True
    assert expired_digests(report) == set(three_repos.values())
    for name, digest in three_repos.items():
        assert remaining(emu, name) == {digest}
    assert emu.request_counts().get("BatchDeleteImage", 0) == 0


def test_dry_run_false_in_event_allowed_when_config_is_not_dry(janitor, emu, three_repos):
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, event={"dryRun": False})
    assert report["dryRun"] is False
    assert all(remaining(emu, name) == set() for name in three_repos)


def test_scheduled_event_with_empty_detail_is_a_normal_run(janitor, emu, three_repos):
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, event=EVENTS_DIR / "scheduled.json")
    assert report["dryRun"] is False
    assert all(remaining(emu, name) == set() for name in three_repos)


def test_empty_object_event_is_a_normal_run(janitor, emu, three_repos):
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, event={})
    assert all(remaining(emu, name) == set() for name in three_repos)
    assert report["requestedNotFound"] == []


@pytest.mark.parametrize("name", ["scheduled.json", "dry-run.json", "single-repository.json"])
def test_shipped_event_files_are_accepted(janitor, emu, name):
    path = EVENTS_DIR / name
    if not path.exists():
        pytest.fail(f"events/{name} is missing")
    event = json.loads(path.read_text())
    detail = event_overrides(event)
    named = detail.get("repositories")
    pushed = {repo: emu.push_image(repo, pushed_at=days_ago(30))
              for repo in [*(named or ["api/orders"]), "zz/untouched-unless-named"]}
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, event=path)
    dry = bool(detail.get("dryRun", False))
    assert report["dryRun"] is dry
    swept = sorted(named) if named else sorted(pushed)
    assert [r["name"] for r in report["repositories"]] == swept
    for repo, digest in pushed.items():
        if repo in swept:
            assert expired_digests(report, repo) == {digest}, repo
        expect_gone = repo in swept and not dry
        assert remaining(emu, repo) == (set() if expect_gone else {digest}), repo
