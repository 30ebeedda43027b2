"""What the end-to-end tests and `make demo` (scripts/demo.py) push into the
ECR emulator: a few images per repository on either side of the default
retention, or weeks of CI-style history.

The default retention is read from the Rust source (one place), never
written out again here or in the tests and the demo that use it."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from ecr_emulator import days_ago

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "src"
MB = 1024 * 1024
# The random seed of the demo's registry (`scripts/demo.py --seed`), also swept by the tests.
CI_HISTORY_SEED = 20261130


def _read_default_max_age_days() -> int:
    """`DEFAULT_UNTAGGED_MAX_AGE_DAYS` in the Rust source (src/config, wherever the
    module lives): what an unset `UNTAGGED_MAX_AGE_DAYS` means."""
    definition = re.compile(r"\bconst\s+DEFAULT_UNTAGGED_MAX_AGE_DAYS\s*:\s*\w+\s*=\s*(\d+)\s*;")
    found = {path: int(m.group(1)) for path in sorted(SRC.rglob("*.rs"))
             for m in [definition.search(path.read_text(encoding="utf-8"))] if m}
    if len(set(found.values())) != 1:
        raise RuntimeError("tests/e2e/seeding.py reads the default retention from the one "
                           "`const DEFAULT_UNTAGGED_MAX_AGE_DAYS: u32 = N;` under src/, "
                           f"but found {found or 'none'}")
    return next(iter(found.values()))


# Untagged images pushed more than this many days ago expire under the default configuration.
DEFAULT_MAX_AGE_DAYS = _read_default_max_age_days()


def expires_by_default(image: Mapping[str, Any], now: datetime) -> bool:
    """Whether the default configuration expires this imageDetail (as the emulator
    returns it): untagged and pushed strictly more than the default age before ``now``."""
    return not image.get("imageTags") and now - image["imagePushedAt"] > timedelta(days=DEFAULT_MAX_AGE_DAYS)


@dataclass
class Seeded:
    """One repository's images: those a default sweep expires, and those it keeps.
    Unpacks as ``expired, kept``."""

    expired: set[str]
    kept: set[str]

    def __iter__(self):
        return iter((self.expired, self.kept))


def seed_repositories(emu, names: Iterable[str], old: int = 2, recent: int = 1,
                      size: Optional[int] = None) -> dict[str, Seeded]:
    """Per repository: ``old`` untagged images pushed a week or more past the default
    retention (a default sweep expires them), ``recent`` untagged images pushed a day
    ago, and one tagged `latest` pushed long ago (both kept: tagged images are never
    expired by age). ``size`` is each image's size in bytes (the emulator's default if None)."""
    seeded = {}
    for name in names:
        expired = {emu.push_image(name, pushed_at=days_ago(DEFAULT_MAX_AGE_DAYS + 6 + i), size=size)
                   for i in range(old)}
        kept = {emu.push_image(name, pushed_at=days_ago(1), size=size) for _ in range(recent)}
        kept.add(emu.push_image(name, ["latest"], pushed_at=days_ago(6 * DEFAULT_MAX_AGE_DAYS), size=size))
        seeded[name] = Seeded(expired, kept)
    return seeded


def _sha(rng: random.Random) -> str:
    return "%07x" % rng.getrandbits(28)


def buildx_history(emu, repo: str, now: datetime, rng: random.Random) -> set[str]:
    """Eight weeks of `docker buildx` pushes, each signed: an image index with amd64 and
    arm64 manifests and their attestation manifests, plus a cosign signature (an OCI 1.1
    referrer) of the index. `latest` moves to every build; every fourth build is a release
    that keeps its `v1.N` tag (and a legacy `sha256-….sig` signature). One signature of an
    index deleted by hand long ago is left orphaned. Returns the digests a default sweep
    deletes: every superseded index past the retention, with its children and signatures,
    and the orphan (nine weeks old, so the untagged rule expires it); everything behind a
    tag stays, children and signatures included."""
    expires = set()
    for week in range(8, 0, -1):
        when = now - timedelta(weeks=week, hours=rng.uniform(1, 20))
        release = week % 4 == 0
        tags = [f"v1.{8 - week}"] if release else []
        idx = emu.push_index(repo, tags + ["latest"], pushed_at=when, size=int(rng.uniform(80, 120) * MB))
        sig = emu.push_referrer(repo, idx.digest, pushed_at=when + timedelta(minutes=2))
        family = {idx.digest, sig, *idx.children}
        if release:
            family.add(emu.push_cosign_legacy(repo, idx.digest, "sig", pushed_at=when + timedelta(minutes=3)))
        if not release and week > 1 and now - when > timedelta(days=DEFAULT_MAX_AGE_DAYS):
            expires |= family  # `latest` moved on: untagged, and past the retention
    orphan_subject = "sha256:" + "%064x" % rng.getrandbits(256)
    expires.add(emu.push_referrer(repo, orphan_subject, pushed_at=now - timedelta(weeks=9)))
    return expires


def ci_history(emu, now: datetime, rng: random.Random) -> dict[str, set[str]]:
    """About eight weeks of CI history in six repositories (some 150 images): tags
    moved onto newer builds leave older ones untagged. Every push time is relative
    to ``now``, so a given ``rng`` seed always gives the same ages. Returns, for the
    repository of multi-arch signed images, the digests a default sweep deletes; in the
    others, exactly the images ``expires_by_default`` names go."""
    start = now - timedelta(weeks=8)

    def push(repo, when, tags=(), size_mb=(40, 120)):
        emu.push_image(repo, tags, pushed_at=when, size=int(rng.uniform(*size_mb) * MB))

    # web/frontend: a build per merge (~1/day on weekdays), tagged sha-* and `latest`;
    # every 10th build is a release. Pull-request builds push untagged images.
    release = 12
    day = start
    n = 0
    while day < now - timedelta(hours=6):
        if day.weekday() < 5:
            n += 1
            tags = [f"sha-{_sha(rng)}", "latest"]
            if n % 10 == 0:
                release += 1
                tags.append(f"release-{release}")
            push("web/frontend", day + timedelta(hours=rng.uniform(9, 18)), tags, (60, 95))
            if rng.random() < 0.5:
                push("web/frontend", day + timedelta(hours=rng.uniform(9, 18)), (), (60, 95))
        day += timedelta(days=1)

    # api/orders: several merges a week, `latest` moves; weekly `release-N`; the CI also pushes
    # an untagged build-cache image with every build.
    release = 40
    for week in range(8):
        for i in range(rng.randint(2, 4)):
            when = start + timedelta(weeks=week, days=i * 1.5 + rng.uniform(0, 1))
            if when >= now:
                continue
            tags = [f"sha-{_sha(rng)}", "latest"]
            if i == 0:
                release += 1
                tags.append(f"release-{release}")
            push("api/orders", when, (), (150, 300))  # build cache
            push("api/orders", when + timedelta(minutes=7), tags, (180, 260))

    # batch/reports: a nightly build tagged only `latest`: each night's image leaves the
    # previous one untagged.
    for d in range(56, 0, -1):
        push("batch/reports", now - timedelta(days=d, hours=-2), ["latest"], (25, 45))

    # tools/base: a weekly base image, tagged `latest` and `python3.12`; both move.
    for week in range(8, 0, -1):
        push("tools/base", now - timedelta(weeks=week, hours=-3), ["latest", "python3.12"], (300, 450))

    # ml/training: big images, pushed untagged by experiments, a few kept by tag.
    for i in range(10):
        when = start + timedelta(days=rng.uniform(0, 55))
        push("ml/training", when, [f"exp-{i:03d}"] if i % 4 == 0 else (), (600, 900))

    # platform/gateway: multi-arch builds with attestations and signatures.
    return {"platform/gateway": buildx_history(emu, "platform/gateway", now, rng)}


def in_use_by_ecs_and_lambda(emu, repo: str, now: datetime) -> str:
    """The oldest untagged image of ``repo`` past the retention, put to use the way a tag
    that moved on leaves it: an ECS service deployment and a Lambda function version pinned
    to its digest. A default sweep would delete it; in-use protection keeps it. Returns its
    digest."""
    images = emu.images(repo)
    candidates = [d for d, i in images.items() if expires_by_default(i, now)]
    digest = min(candidates, key=lambda d: images[d]["imagePushedAt"])
    uri = emu.image_uri(repo, digest=digest)
    emu.ecs_service("prod", "orders-api", uri)
    emu.lambda_image_function("orders-worker", uri, publish=True)
    return digest
