#!/usr/bin/env python3
"""What a user would otherwise script to expire old untagged ECR images, done properly.

boto3 with standard retries; DescribeRepositories and DescribeImages through their
paginators at 1,000 per page; every untagged image pushed more than --max-age-days ago
expires; BatchDeleteImage in batches of 100. Repositories are processed one after the
other, as such scripts do; ``--threads N`` processes N repositories at once instead.

It reads the usual AWS_* environment (AWS_ENDPOINT_URL included) and prints one JSON
summary line. Exit code 1 when any repository failed or any image could not be deleted.

It is the benchmark's point of comparison (bench/run.py), not part of ecr-janitor: no
image indexes, in-use protection, re-check before deleting, dry run or report.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
from botocore.config import Config

PAGE_SIZE = 1000
DELETE_BATCH = 100


def sweep_repository(ecr: Any, name: str, cutoff: datetime) -> dict[str, Any]:
    expired: list[str] = []
    scanned = 0
    pages = ecr.get_paginator("describe_images").paginate(
        repositoryName=name, PaginationConfig={"PageSize": PAGE_SIZE})
    for page in pages:
        for image in page["imageDetails"]:
            scanned += 1
            if not image.get("imageTags") and image["imagePushedAt"] < cutoff:
                expired.append(image["imageDigest"])
    deleted = 0
    failures: list[dict[str, Any]] = []
    for start in range(0, len(expired), DELETE_BATCH):
        batch = expired[start:start + DELETE_BATCH]
        out = ecr.batch_delete_image(repositoryName=name,
                                     imageIds=[{"imageDigest": d} for d in batch])
        deleted += len({i["imageDigest"] for i in out.get("imageIds", [])})
        failures.extend(out.get("failures", []))
    return {"name": name, "scanned": scanned, "expired": len(expired), "deleted": deleted,
            "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-age-days", type=int, default=14)
    parser.add_argument("--threads", type=int, default=1,
                        help="repositories processed at once (default 1: one after the other)")
    args = parser.parse_args()

    config = Config(retries={"mode": "standard", "max_attempts": 5},
                    max_pool_connections=max(10, args.threads))
    ecr = boto3.session.Session().client("ecr", config=config)
    cutoff = datetime.now(timezone.utc) - timedelta(days=args.max_age_days)

    names: list[str] = []
    for page in ecr.get_paginator("describe_repositories").paginate(
            PaginationConfig={"PageSize": PAGE_SIZE}):
        names.extend(r["repositoryName"] for r in page["repositories"])

    results: list[dict[str, Any]] = []
    errors: list[str] = []

    def one(name: str) -> None:
        try:
            results.append(sweep_repository(ecr, name, cutoff))
        except Exception as e:  # noqa: BLE001 - one repository's failure is reported, others go on
            errors.append(f"{name}: {e}")

    if args.threads <= 1:
        for name in names:
            one(name)
    else:
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            list(pool.map(one, names))

    summary = {
        "repositories": len(names),
        "scanned": sum(r["scanned"] for r in results),
        "expired": sum(r["expired"] for r in results),
        "deleted": sum(r["deleted"] for r in results),
        "failures": sum(len(r["failures"]) for r in results),
        "errors": errors,
    }
    print(json.dumps(summary))
    return 1 if errors or summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
