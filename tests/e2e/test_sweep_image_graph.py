"""Image indexes, attestations, signatures and referrers, and the race between planning
and deleting: the janitor never breaks an image that is still referenced, deletes a whole
expired multi-arch image in one run, and re-reads each batch just before deleting it."""

from __future__ import annotations

from ecr_emulator import days_ago
from e2e_helpers import check_report_shape, expired_digests, remaining, repo_entry, sweep_checked

LIVE = {"DRY_RUN": "false"}


def racing_sweep(janitor):
    """A live sweep while the emulator's hooks change the registry under it: the
    before/after comparison of sweep_checked does not apply (tags change by design)."""
    run = janitor.sweep(env=LIVE)
    assert run.code == 0 and run.report is not None, run.describe()
    check_report_shape(run.report)
    return run.report


def kept_reason(report, repo, digest):
    reasons = {k["imageDigest"]: k["reason"] for k in repo_entry(report, repo)["kept"]}
    return reasons[digest]


def test_children_of_a_kept_index_are_kept_and_never_attempted(janitor, emu):
    idx = emu.push_index("app", ["v1"], pushed_at=days_ago(90))
    everything = {idx.digest, *idx.children}
    assert len(idx.children) == 4, "two platforms, two attestation manifests"

    dry = sweep_checked(janitor, emu)
    assert expired_digests(dry, "app") == set()
    for child in idx.children:
        assert kept_reason(dry, "app", child) == f"listed by index {idx.digest}, which is kept (tag v1)"

    live = sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "app") == everything
    assert live["totals"]["expired"] == 0 and live["totals"]["failed"] == 0
    assert emu.request_counts().get("BatchDeleteImage", 0) == 0


def test_an_expired_index_goes_with_its_children_in_the_same_run(janitor, emu):
    # The tag moved to a newer build: the old index is untagged, and old.
    old = emu.push_index("app", pushed_at=days_ago(30))
    new = emu.push_index("app", ["latest"], pushed_at=days_ago(1))
    report = sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "app") == {new.digest, *new.children}
    entry = repo_entry(report, "app")
    assert expired_digests(report, "app") == {old.digest, *old.children}
    assert entry["deleted"] == 5 and entry["failures"] == [] and "heldBack" not in entry
    reasons = {e["imageDigest"]: e["reason"] for e in entry["expired"]}
    for child in old.children:
        assert reasons[child] == f"listed only by index {old.digest}, which expires"
    # The index in one BatchDeleteImage call, its children in a later one.
    deletes = [r for r in emu.request_log() if r.action == "BatchDeleteImage"]
    assert len(deletes) == 2


def test_a_child_shared_by_a_kept_and_an_expired_index_is_kept(janitor, emu):
    old = emu.push_index("app", pushed_at=days_ago(30), attestation=False)
    amd64 = old.platforms["linux/amd64"]
    arm64 = old.platforms["linux/arm64"]
    new = emu.push_index("app", ["v2"], pushed_at=days_ago(2), children=[amd64])
    report = sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "app") == {new.digest, amd64}
    assert expired_digests(report, "app") == {old.digest, arm64}
    assert report["totals"]["failed"] == 0


def test_attestation_manifests_follow_their_index(janitor, emu):
    kept = emu.push_index("app", ["v1"], pushed_at=days_ago(60))
    gone = emu.push_index("app", pushed_at=days_ago(60))
    sweep_checked(janitor, emu, env=LIVE)
    left = remaining(emu, "app")
    assert set(kept.attestations) <= left
    assert not set(gone.attestations) & left
    assert left == {kept.digest, *kept.children}


def test_a_signature_of_a_kept_image_is_kept_whatever_its_age(janitor, emu):
    image = emu.push_image("app", ["v1"], pushed_at=days_ago(200))
    sig = emu.push_referrer("app", image, pushed_at=days_ago(199))
    sbom = emu.push_referrer("app", image, artifact_type="application/spdx+json", pushed_at=days_ago(199))
    dry = sweep_checked(janitor, emu)
    assert kept_reason(dry, "app", sig) == f"refers to {image}, which is kept (tag v1)"
    sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "app") == {image, sig, sbom}


def test_a_referrer_of_an_expiring_image_goes_after_it(janitor, emu):
    old = emu.push_image("app", pushed_at=days_ago(40))
    sig = emu.push_referrer("app", old, pushed_at=days_ago(1))
    keep = emu.push_image("app", pushed_at=days_ago(1))
    report = sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "app") == {keep}
    reasons = {e["imageDigest"]: e["reason"] for e in repo_entry(report, "app")["expired"]}
    assert reasons[sig] == f"refers to {old}, which expires"
    # The subject is deleted in an earlier call than its signature.
    deletes = [r for r in emu.request_log() if r.action == "BatchDeleteImage"]
    assert len(deletes) == 2


def test_a_referrer_whose_subject_is_not_in_the_repository_is_decided_by_the_policy(janitor, emu):
    # Its subject may have been pushed while the janitor listed the repository, or live in
    # another repository (cosign's COSIGN_REPOSITORY): the untagged rule decides it by age.
    absent = "sha256:" + "0" * 64
    emu.create_repository("app")
    fresh = emu.push_referrer("app", absent, pushed_at=days_ago(1))
    stale = emu.push_referrer("app", absent, pushed_at=days_ago(40))
    dry = sweep_checked(janitor, emu)
    assert kept_reason(dry, "app", fresh) == "rule 1 selects it but it is within its limits"
    reasons = {e["imageDigest"]: e["reason"] for e in repo_entry(dry, "app")["expired"]}
    assert reasons == {stale: "rule 1: untagged, pushed 40 days ago (limit 14 days)"}
    sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "app") == {fresh}


def test_signatures_kept_in_their_own_repository_are_tagged_images_there(janitor, emu):
    # COSIGN_REPOSITORY=signatures: cosign tags each signature sha256-<hex>.sig in a
    # repository that holds none of the images it signs.
    image = emu.push_image("app", ["v1"], pushed_at=days_ago(90))
    sig = emu.push_cosign_legacy("signatures", image, pushed_at=days_ago(90))
    dry = sweep_checked(janitor, emu)
    assert kept_reason(dry, "signatures", sig) == "no rule selects it"
    sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "signatures") == {sig}


def test_a_legacy_cosign_tag_follows_its_image_not_the_policy(janitor, emu):
    # Under a tagStatus=any age rule, an old signature (tagged sha256-….sig) would expire on
    # its own; it follows its fresh subject instead.
    policy = ('{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":'
              '"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}')
    fresh = emu.push_image("app", ["v2"], pushed_at=days_ago(1))
    fresh_sig = emu.push_cosign_legacy("app", fresh, "sig", pushed_at=days_ago(100))
    old = emu.push_image("app", ["v1"], pushed_at=days_ago(100))
    old_sig = emu.push_cosign_legacy("app", old, "sig", pushed_at=days_ago(1))
    dry = sweep_checked(janitor, emu, env={"LIFECYCLE_POLICY": policy})
    assert kept_reason(dry, "app", fresh_sig) == f"refers to {fresh}, which is kept (tag v2)"
    sweep_checked(janitor, emu, env={**LIVE, "LIFECYCLE_POLICY": policy})
    assert remaining(emu, "app") == {fresh, fresh_sig}
    assert old_sig not in remaining(emu, "app")


def test_a_legacy_signature_of_a_tagged_image_is_kept_by_default(janitor, emu):
    kept = emu.push_image("app", ["v1"], pushed_at=days_ago(100))
    kept_sig = emu.push_cosign_legacy("app", kept, "sig", pushed_at=days_ago(100))
    old = emu.push_image("app", pushed_at=days_ago(100))
    old_att = emu.push_cosign_legacy("app", old, "att", pushed_at=days_ago(1))
    report = sweep_checked(janitor, emu, env=LIVE)
    assert remaining(emu, "app") == {kept, kept_sig}
    assert expired_digests(report, "app") == {old, old_att}


def test_an_unreadable_index_manifest_fails_that_repository_closed(janitor, emu):
    idx = emu.push_index("app", ["v1"], pushed_at=days_ago(60))
    loose = emu.push_image("app", pushed_at=days_ago(60))
    emu.break_manifest("app", idx.digest)
    other = emu.push_image("other", pushed_at=days_ago(60))
    report = sweep_checked(janitor, emu, env=LIVE, expect_code=1)
    entry = repo_entry(report, "app")
    assert entry["errorCode"] == "ManifestUnreadable"
    assert idx.digest in entry["error"] and "KmsError" in entry["error"]
    assert remaining(emu, "app") == {idx.digest, loose, *idx.children}
    assert remaining(emu, "other") == set(), "the other repositories carry on"
    assert other in expired_digests(report, "other")


def test_a_garbled_index_manifest_fails_closed_too(janitor, emu):
    idx = emu.push_index("app", pushed_at=days_ago(60))
    emu.break_manifest("app", idx.digest, mode="garbage")
    report = sweep_checked(janitor, emu, env=LIVE, expect_code=1)
    assert repo_entry(report, "app")["errorCode"] == "ManifestUnreadable"
    assert remaining(emu, "app") == {idx.digest, *idx.children}


def test_a_tag_added_between_listing_and_delete_saves_the_image(janitor, emu):
    promoted = emu.push_image("app", pushed_at=days_ago(60))
    other = emu.push_image("app", pushed_at=days_ago(60))
    emu.tag_after_listing("app", promoted, "hotfix")
    report = racing_sweep(janitor)
    assert emu.pending_listing_hooks() == 0
    assert remaining(emu, "app") == {promoted}
    assert emu.tags_of("app", promoted) == {"hotfix"}
    held = repo_entry(report, "app")["heldBack"]
    assert [(h["imageDigest"], h["reason"]) for h in held] == [
        (promoted, "held back: tagged since it was planned (now: hotfix)")]
    assert expired_digests(report, "app") == {other}


def test_an_index_tagged_meanwhile_keeps_its_children_too(janitor, emu):
    idx = emu.push_index("app", pushed_at=days_ago(60))
    emu.tag_after_listing("app", idx.digest, "rollback")
    report = racing_sweep(janitor)
    assert remaining(emu, "app") == {idx.digest, *idx.children}
    held = {h["imageDigest"] for h in repo_entry(report, "app")["heldBack"]}
    assert held == {idx.digest, *idx.children}
    assert report["totals"]["failed"] == 0


def test_an_image_deleted_between_listing_and_recheck_is_already_gone(janitor, emu):
    vanished = emu.push_image("app", pushed_at=days_ago(60))
    other = emu.push_image("app", pushed_at=days_ago(61))
    emu.delete_after_listing("app", vanished)
    report = sweep_checked(janitor, emu, env=LIVE)
    entry = repo_entry(report, "app")
    assert (entry["deleted"], entry["alreadyGone"]) == (1, 1)
    assert remaining(emu, "app") == set()
    assert expired_digests(report, "app") == {vanished, other}


def ci_weeks(emu, repo, weeks=6):
    """buildx pushes, superseded weekly, each index signed; returns (live, superseded)."""
    live, superseded = set(), set()
    for week in range(weeks, 0, -1):
        # 4, 11, 18, … days old: the two newest are within the default 14 days.
        pushed = days_ago(7 * week - 3)
        idx = emu.push_index(repo, ["latest"] if week == 1 else [], pushed_at=pushed)
        sig = emu.push_referrer(repo, idx.digest, pushed_at=pushed)
        (live if week <= 2 else superseded).update({idx.digest, sig, *idx.children})
    return live, superseded


def test_dry_run_announces_exactly_what_a_live_run_deletes(janitor, emu):
    live_a, superseded_a = ci_weeks(emu, "svc/a")
    live_b, superseded_b = ci_weeks(emu, "svc/b", weeks=3)
    dry = sweep_checked(janitor, emu)
    announced = expired_digests(dry)
    assert announced == superseded_a | superseded_b
    report = sweep_checked(janitor, emu, env=LIVE)
    assert expired_digests(report) == announced
    assert remaining(emu, "svc/a") == live_a and remaining(emu, "svc/b") == live_b
    assert report["totals"]["failed"] == 0 and report["totals"]["heldBack"] == 0


def test_calls_per_repository_are_the_documented_minimum(janitor, emu):
    _, superseded = ci_weeks(emu, "svc", weeks=5)
    indexes = 5
    emu.clear_request_counts()
    sweep_checked(janitor, emu, env=LIVE)
    counts = emu.request_counts("ecr")
    # 1 DescribeImages listing page, 1 BatchGetImage (5 indexes), and per delete wave
    # (indexes; their children and signatures) one re-check and one delete.
    assert counts.get("BatchGetImage") == -(-indexes // 100)
    assert counts.get("BatchDeleteImage") == 2
    assert counts.get("DescribeImages") == 1 + 2
    assert counts.get("DescribeRepositories") == 1
    assert len(superseded) == 3 * 6
