"""A local Amazon ECR emulator (with ECS and Lambda) for ecr-janitor's tests and demo.

It is moto (moto[server], pinned in requirements-test.txt), served over HTTP
on 127.0.0.1 by a werkzeug server running in a background thread of this
process, with the gaps that matter to ecr-janitor patched so that it behaves
like the real services. One port serves every service (ECR, ECS, Lambda,
IAM, EC2, EventBridge, SQS); moto keeps one backend per region.

ECR patches (this module; manifests are parsed by ``image_graph``):

* DescribeRepositories, DescribeImages and ListImages honour ``maxResults``
  (1..1000, default 100) and return an opaque ``nextToken``. Items come back in
  an order that is stable but deliberately *not* sorted by name or push date,
  and tokens are keyed on the last item returned, so deleting images between
  two pages does not make the listing skip anything.
* DescribeImages honours ``filter.tagStatus`` (TAGGED / UNTAGGED / ANY).
* DescribeImages returns ``artifactMediaType`` (the manifest's
  ``artifactType``, else its ``config.mediaType``; absent for image indexes)
  and ``subjectManifestDigest`` (the manifest's ``subject.digest``), derived
  at PutImage (or lazily for images added to a repository directly).
* DescribeImages with explicit ``imageIds`` takes at most 100 ids
  (ValidationException) and answers each image once, in request order; one
  missing id fails the whole call with ImageNotFoundException (moto did that
  already; it is tested).
* ``imagePushedAt`` can be back-dated and ``imageSizeInBytes`` set, from
  Python. Otherwise the size is the layers' total, as ECR counts it (moto
  used the config blob's size); image indexes have none.
* PutImage that moves an existing tag onto a new manifest leaves the old image
  in the repository, untagged (moto deleted it).
* PutImage of an image index (OCI index or Docker manifest list) whose
  listed manifests are not all in the repository fails with
  ReferencedImagesNotFoundException (moto stored it).
* BatchGetImage echoes each requested image id (digest, plus the tag when
  asked by tag; moto answered the image's last tag and lost the digest of a
  missing id), reports tag/digest mismatches as ImageTagDoesNotMatchDigest,
  takes at most 100 ids, and can be made to fail an image's manifest
  (``break_manifest``: a per-image failure such as KmsError, or text that is
  not JSON).
* BatchDeleteImage returns the deleted image ids for untagged images too, and
  rejects more than 100 image ids like ECR does.
* BatchDeleteImage refuses (per-image failure ImageReferencedByManifestList,
  "Requested image referenced by manifest list: [sha256:...]") to delete a
  manifest listed by an image index present in the repository at the start
  of the call, even when the index is deleted by the same call. Removing one
  of several tags of such an image is allowed (the image stays).
* Image digests are the real sha256 of the manifest bytes.
* EventBridge delivers events to rule targets with ``account``, as AWS does
  (moto's default template leaves it out).

Connections (the HTTP server):

* A connection stays open between requests, as ECR's endpoints keep it, so a
  client's SDK reuses it (werkzeug's server answers every request with
  ``Connection: close``, and then reads and drops whatever the client sends
  next; a client paid a new connection and the emulator a new thread per
  call). A client that asks for ``Connection: close`` gets it. Responses go out
  without Nagle's delay, and ``stop()`` closes the connections still open.

Request handling (the WSGI middleware):

* Every request is counted per API action: from ``X-Amz-Target`` (ECR, ECS,
  ...), the query ``Action`` (IAM, SQS, ...), or, for REST APIs such as
  Lambda, from the method and path matched against botocore's description of
  the service (GET /2015-03-31/functions/{name}/versions is
  ListVersionsByFunction). Each record keeps the service and the region (from
  the request's SigV4 credential scope).
* Faults (throttling or any status/code) can be injected for the next N calls
  of an action ("DescribeImages"), of one service's action
  ("ecs:DescribeTasks") or of every action of a service ("lambda:*",
  ``fail_service``), optionally only for one repository or one region.
* Race hooks: ``tag_after_listing`` / ``delete_after_listing`` change an
  image as soon as a counted DescribeImages listing of its repository
  completes (a call without ``imageIds`` whose answer has no ``nextToken``).

ECS and Lambda patches are in ``compute`` (its docstring lists them):
``imageDigest`` of task containers resolved at task start, one container per
container definition, pagination of the ECS and Lambda list APIs, Lambda's
``ResolvedImageUri`` resolved at create/update and kept per published
version.

moto keeps its state in process-wide globals, so only one Emulator should run
per process; ``shared()`` returns a lazily started process-wide instance.

Only loopback is ever bound or contacted.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import io
import json
import random
import re
import selectors
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional

import image_graph
from image_graph import (  # noqa: F401 - re-exported for tests
    DOCKER_CONFIG_V1,
    DOCKER_LAYER,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST_V2,
    INDEX_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    IndexImage,
    manifest_digest,
)
from compute import ComputeMixin, apply_compute_patches

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."

DEFAULT_MAX_RESULTS = 100
MAX_MAX_RESULTS = 1000
MAX_BATCH_DELETE = 100
MAX_IMAGE_IDS = 100  # DescribeImages / BatchGetImage imageIds
UNCOUNTED_HEADER = "x-ecr-emulator-uncounted"
UNCOUNTED_ENVIRON = "HTTP_X_ECR_EMULATOR_UNCOUNTED"


# --------------------------------------------------------------------------
# Patches to moto
# --------------------------------------------------------------------------

_patch_lock = threading.Lock()
_patched = False

# Keys are (region, repository, digest).
# Images that BatchDeleteImage must refuse to delete -> (code, reason)
_protected: dict[tuple[str, str, str], tuple[str, str]] = {}
# Images that vanish just before the next BatchDeleteImage that names them.
_vanishing: set[tuple[str, str, str]] = set()
# Images whose manifest BatchGetImage cannot serve -> (mode, code, reason)
_broken: dict[tuple[str, str, str], tuple[str, str, str]] = {}

GARBAGE_MANIFEST = "<html><body>502 Bad Gateway</body></html> this is not a manifest"


def utc(when: Any) -> datetime:
    """Turn a datetime (naive = UTC), a timedelta (= that long ago) or epoch
    seconds into an aware UTC datetime."""
    if isinstance(when, datetime):
        return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    if isinstance(when, timedelta):
        return datetime.now(timezone.utc) - when
    if isinstance(when, (int, float)):
        return datetime.fromtimestamp(when, tz=timezone.utc)
    raise TypeError(f"cannot turn {when!r} into a datetime")


def days_ago(days: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days)




def _ecr_invalid_parameter(message: str) -> Exception:
    from moto.ecr.exceptions import InvalidParameterException

    return InvalidParameterException(message)


def _encode_token(scope: str, after: str) -> str:
    raw = json.dumps({"s": scope, "a": after}, separators=(",", ":")).encode()
    mac = hashlib.sha256(b"ecr-emulator" + raw).hexdigest()[:16]
    return base64.urlsafe_b64encode(raw + b"|" + mac.encode()).decode().rstrip("=")


def _decode_token(token: str, scope: str, error: Callable[[str], Exception] = _ecr_invalid_parameter,
                  param: str = "nextToken") -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        blob = base64.urlsafe_b64decode(padded.encode())
        raw, mac = blob.rsplit(b"|", 1)
        if hashlib.sha256(b"ecr-emulator" + raw).hexdigest()[:16].encode() != mac:
            raise ValueError("bad mac")
        data = json.loads(raw)
        if data["s"] != scope:
            raise ValueError("token from another listing")
        return str(data["a"])
    except Exception:  # noqa: BLE001 - any decoding problem is the caller's bad token
        raise error(
            f"Invalid parameter at '{param}' failed to satisfy constraint: 'Invalid NextToken'"
        ) from None


def _paginate(items: list[Any], key: Callable[[Any], str], max_results: Any,
              next_token: Optional[str], scope: str, *, default: int = DEFAULT_MAX_RESULTS,
              maximum: int = MAX_MAX_RESULTS, page_cap: Optional[int] = None,
              error: Callable[[str], Exception] = _ecr_invalid_parameter,
              param: str = "maxResults", token_param: str = "nextToken",
              reverse: bool = False) -> tuple[list[Any], Optional[str]]:
    """Key-based pagination: items are ordered by ``key``; a token names the
    last key returned, so items deleted meanwhile do not shift later pages.
    ``max_results`` must be within 1..``maximum``; a page holds at most
    ``page_cap`` items whatever was asked (Lambda's 50)."""
    if max_results is None:
        limit = default
    else:
        try:
            limit = int(max_results)
        except (TypeError, ValueError):
            limit = -1
        if not 1 <= limit <= maximum:
            raise error(
                f"Invalid parameter at '{param}' failed to satisfy constraint: "
                f"'Member must have value between 1 and {maximum}, inclusive' (got {max_results!r})"
            )
    if page_cap is not None:
        limit = min(limit, page_cap)
    ordered = sorted(items, key=key, reverse=reverse)
    keys = [key(i) for i in ordered]
    start = 0
    if next_token:
        after = _decode_token(next_token, scope, error, token_param)
        if reverse:
            start = next((n for n, k in enumerate(keys) if k < after), len(keys))
        else:
            start = bisect.bisect_right(keys, after)
    page = ordered[start:start + limit]
    token = None
    if start + limit < len(ordered):
        token = _encode_token(scope, keys[start + limit - 1])
    return page, token


def _repo_order_key(repo: Any) -> str:
    # Stable, but neither alphabetical nor creation order: callers must sort.
    return hashlib.sha256(repo.name.encode()).hexdigest() + repo.name


def _image_order_key(image: Any) -> str:
    return image.get_image_digest()


def _tag_status(value: Any) -> str:
    from moto.ecr.exceptions import InvalidParameterException

    status = value or "ANY"
    if status not in ("TAGGED", "UNTAGGED", "ANY"):
        raise InvalidParameterException(
            "Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: "
            "'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]'"
        )
    return status


def _filter_images(images: Iterable[Any], status: str) -> list[Any]:
    if status == "TAGGED":
        return [i for i in images if i.image_tags]
    if status == "UNTAGGED":
        return [i for i in images if not i.image_tags]
    return list(images)


def apply_patches() -> None:
    """Patch moto's ECR model and responses in this process (idempotent)."""
    global _patched
    with _patch_lock:
        if _patched:
            return
        _apply_patches()
        _patch_event_delivery()
        _keep_connections()
        _patched = True


def _patch_event_delivery() -> None:
    """EventBridge delivers an event to its targets as AWS does: with ``account`` (moto's
    default template drops it; moto turns ``time`` into ISO-8601 text itself when it sends
    to SQS). Rules with their own input transformer are left to moto."""
    from moto.events import utils as events_utils

    original = events_utils.EventTemplateParser.parse

    def parse(input_template: Any, input_paths_map: Any, event: dict[str, Any]) -> dict[str, Any]:
        if input_template or input_paths_map:
            return original(input_template, input_paths_map, event)
        keys = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
        return {k: event.get(k) for k in keys}

    events_utils.EventTemplateParser.parse = staticmethod(parse)


def _apply_patches() -> None:
    import copy

    from moto.core.responses import ActionResult
    from moto.ecr import models as ecr_models
    from moto.ecr import responses as ecr_responses
    from moto.core.exceptions import ServiceException
    from moto.ecr.exceptions import (
        ImageAlreadyExistsException,
        InvalidParameterException,
        RepositoryNotFoundException,
        ValidationException,
    )

    class ReferencedImagesNotFoundException(ServiceException):
        code = "ReferencedImagesNotFoundException"

    Image = ecr_models.Image
    ECRBackend = ecr_models.ECRBackend
    ECRResponse = ecr_responses.ECRResponse

    # ---- What ECR derives from the manifest ------------------------------
    # Computed once per image (at PutImage, or lazily for images appended to a
    # repository directly) and kept on the image as ``emu_facts``.
    def image_facts(self: Any) -> image_graph.ManifestFacts:
        cached = self.__dict__.get("emu_facts")
        if cached is None:
            cached = image_graph.facts(self.image_manifest, self.image_manifest_media_type)
            self.emu_facts = cached
        return cached

    Image.graph = property(image_facts)
    # DescribeImages' imageDetail fields (None values are left out).
    Image.artifact_media_type = property(lambda self: self.graph.artifact_media_type)
    Image.subject_manifest_digest = property(lambda self: self.graph.subject_digest)

    # ---- imageSizeInBytes settable; else the layers' total, as ECR -----
    def get_image_size_in_bytes(self: Any) -> Optional[int]:
        size = getattr(self, "emu_size", None)
        if size is not None:
            return size
        return self.graph.layers_size

    Image.get_image_size_in_bytes = get_image_size_in_bytes

    # ---- PutImage: real digests, retag leaves the old image untagged ----
    def put_image(self: Any, repository_name: str, image_manifest: str, image_tag: Optional[str],
                  image_manifest_mediatype: Optional[str] = None, digest: Optional[str] = None) -> Any:
        repository = self._get_repository(repository_name)
        try:
            parsed = json.loads(image_manifest)
        except (TypeError, json.JSONDecodeError):
            raise InvalidParameterException(
                "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'"
            ) from None
        if not image_manifest_mediatype:
            image_manifest_mediatype = parsed.get("mediaType") if isinstance(parsed, dict) else None
            if not image_manifest_mediatype:
                raise InvalidParameterException("image manifest mediatype not provided in manifest or parameter")
        real_digest = manifest_digest(image_manifest)
        if digest and digest != real_digest:
            raise InvalidParameterException(
                f"Invalid parameter at 'imageDigest' failed to satisfy constraint: "
                f"'digest {digest} does not match the manifest digest {real_digest}'"
            )

        holders = [i for i in repository.images if image_tag is not None and image_tag in i.image_tags]
        if holders and repository.is_tag_immutable():
            if holders[0].get_image_digest() != real_digest:
                raise ImageAlreadyExistsException(
                    registry_id=repository.registry_id, image_tag=image_tag,
                    digest=holders[0].get_image_digest(), repository_name=repository_name,
                )

        graph = image_graph.facts(image_manifest, image_manifest_mediatype)
        if graph.is_index:
            present = {i.get_image_digest() for i in repository.images}
            missing = [child for child in graph.children if child not in present]
            if missing:
                raise ReferencedImagesNotFoundException(
                    f"Some of the referenced images were not found: [{', '.join(missing)}]")

        existing = next((i for i in repository.images if i.get_image_digest() == real_digest), None)
        if existing is not None:
            if image_tag is None or image_tag in existing.image_tags:
                raise ImageAlreadyExistsException(
                    registry_id=repository.registry_id, image_tag=image_tag or "null",
                    digest=real_digest, repository_name=repository_name,
                )
            image = existing
        else:
            image = Image(self.account_id, None, image_manifest, repository_name,
                          image_manifest_mediatype, real_digest)
            image.emu_facts = graph
            image.image_pushed_at = datetime.now(timezone.utc)
            repository.images.append(image)

        if image_tag is not None:
            # Real ECR moves the tag: the previous holder keeps existing, and
            # becomes untagged when that was its only tag.
            for holder in holders:
                if holder is not image:
                    holder.image_tags.remove(image_tag)
                    holder.image_tag = holder.image_tags[-1] if holder.image_tags else None
            image.update_tag(image_tag)
        return image

    ECRBackend.put_image = put_image

    # ---- BatchDeleteImage ---------------------------------------------------
    def batch_delete_image(self: Any, repository_name: str, registry_id: Optional[str] = None,
                           image_ids: Optional[list[dict[str, str]]] = None) -> dict[str, Any]:
        repository = self.repositories.get(repository_name)
        if repository is None or (registry_id and repository.registry_id != registry_id):
            raise RepositoryNotFoundException(repository_name, registry_id or self.account_id)
        if not image_ids:
            raise InvalidParameterException(
                "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'"
            )
        if len(image_ids) > MAX_BATCH_DELETE:
            raise ValidationException(
                f"1 validation error detected: Value at 'imageIds' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_BATCH_DELETE}"
            )

        region = self.region_name
        for image_id in image_ids:
            key = (region, repository_name, image_id.get("imageDigest", ""))
            if key in _vanishing:
                _vanishing.discard(key)
                repository.images = [i for i in repository.images if i.get_image_digest() != key[2]]

        # Image indexes present at the start of the call protect what they
        # list, even when the index itself is deleted by this same call.
        referenced_by: dict[str, list[str]] = {}
        for candidate in repository.images:
            if candidate.graph.is_index:
                for child in candidate.graph.children:
                    referenced_by.setdefault(child, []).append(candidate.get_image_digest())

        deleted: list[dict[str, str]] = []
        failures: list[dict[str, Any]] = []
        for image_id in image_ids:
            digest = image_id.get("imageDigest")
            tag = image_id.get("imageTag")
            if digest is None and tag is None:
                failures.append({"imageId": {}, "failureCode": "MissingDigestAndTag",
                                 "failureReason": "Invalid request parameters: both tag and digest cannot be null"})
                continue
            if digest is not None and not _DIGEST_RE.match(digest):
                failures.append({"imageId": dict(image_id), "failureCode": "InvalidImageDigest",
                                 "failureReason": "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"})
                continue
            image = next((i for i in repository.images
                          if (digest is None or i.get_image_digest() == digest)
                          and (tag is None or tag in i.image_tags)), None)
            if image is None:
                if digest is not None and tag is not None and any(
                        i.get_image_digest() == digest for i in repository.images):
                    failures.append({"imageId": dict(image_id), "failureCode": "ImageTagDoesNotMatchDigest",
                                     "failureReason": "Invalid request parameters: image tag does not match digest"})
                else:
                    failures.append({"imageId": dict(image_id), "failureCode": "ImageNotFound",
                                     "failureReason": "Requested image not found"})
                continue
            image_digest = image.get_image_digest()
            protected = _protected.get((region, repository_name, image_digest))
            if protected is not None:
                failures.append({"imageId": dict(image_id), "failureCode": protected[0],
                                 "failureReason": protected[1]})
                continue
            if tag is not None and digest is None and len(image.image_tags) > 1:
                # Deleting by tag only removes that tag while others remain.
                image.image_tags.remove(tag)
                image.image_tag = image.image_tags[-1]
                deleted.append({"imageDigest": image_digest, "imageTag": tag})
                continue
            parents = referenced_by.get(image_digest)
            if parents:
                failures.append({"imageId": dict(image_id), "failureCode": "ImageReferencedByManifestList",
                                 "failureReason": "Requested image referenced by manifest list: "
                                                  f"[{', '.join(parents)}]"})
                continue
            repository.images.remove(image)
            if image.image_tags:
                deleted.extend({"imageDigest": image_digest, "imageTag": t} for t in image.image_tags)
            else:
                deleted.append({"imageDigest": image_digest})
        return {"imageIds": deleted, "failures": failures}

    ECRBackend.batch_delete_image = batch_delete_image

    # ---- DescribeRepositories: pagination ------------------------------
    def describe_repositories(self: Any) -> ActionResult:
        names = self._get_param("repositoryNames")
        registry_id = self._get_param("registryId")
        repositories = self.ecr_backend.describe_repositories(repository_names=names, registry_id=registry_id)
        if names:
            if self._get_param("maxResults") is not None or self._get_param("nextToken"):
                raise InvalidParameterException(
                    "Invalid parameter: maxResults and nextToken cannot be used with repositoryNames"
                )
            return ActionResult({"repositories": repositories})
        page, token = _paginate(list(repositories), _repo_order_key, self._get_param("maxResults"),
                                self._get_param("nextToken"), f"repos:{registry_id or ''}")
        result: dict[str, Any] = {"repositories": page}
        if token:
            result["nextToken"] = token
        return ActionResult(result)

    ECRResponse.describe_repositories = describe_repositories

    # ---- DescribeImages: pagination + filter.tagStatus -----------------
    def describe_images(self: Any) -> ActionResult:
        repository_name = self._get_param("repositoryName")
        registry_id = self._get_param("registryId")
        image_ids = self._get_param("imageIds")
        status = _tag_status((self._get_param("filter") or {}).get("tagStatus"))
        if image_ids is not None and len(image_ids) > MAX_IMAGE_IDS:
            raise ValidationException(
                f"1 validation error detected: Value at 'imageIds' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_IMAGE_IDS}"
            )
        if image_ids:
            # Any missing id fails the whole call (ImageNotFoundException), as in ECR.
            repository = self.ecr_backend._get_repository(repository_name, registry_id)
            images, seen = [], set()
            for image_id in image_ids:
                image = repository._get_image(image_id.get("imageTag"), image_id.get("imageDigest"))
                if image.get_image_digest() not in seen:
                    seen.add(image.get_image_digest())
                    images.append(image)
            token = None
        else:
            images = _filter_images(self.ecr_backend.describe_images(repository_name, registry_id), status)
            images, token = _paginate(images, _image_order_key, self._get_param("maxResults"),
                                      self._get_param("nextToken"), f"images:{repository_name}:{status}")
        details = []
        for image in images:
            detail = copy.copy(image)
            if not detail.image_tags:
                # Real ECR omits imageTags for untagged images.
                del detail.image_tags
            details.append(detail)
        result: dict[str, Any] = {"imageDetails": details}
        if token:
            result["nextToken"] = token
        return ActionResult(result)

    ECRResponse.describe_images = describe_images

    # ---- BatchGetImage: the requested ids echoed, broken manifests ------
    def batch_get_image(self: Any, repository_name: str, registry_id: Optional[str] = None,
                        image_ids: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
        repository = self.repositories.get(repository_name)
        if repository is None or (registry_id and repository.registry_id != registry_id):
            raise RepositoryNotFoundException(repository_name, registry_id or self.account_id)
        if not image_ids:
            raise InvalidParameterException(
                "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'"
            )
        if len(image_ids) > MAX_IMAGE_IDS:
            raise ValidationException(
                f"1 validation error detected: Value at 'imageIds' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_IMAGE_IDS}"
            )
        images: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        for image_id in image_ids:
            digest = image_id.get("imageDigest")
            tag = image_id.get("imageTag")
            requested = {k: v for k, v in (("imageDigest", digest), ("imageTag", tag)) if v is not None}
            if digest is None and tag is None:
                failures.append({"imageId": {}, "failureCode": "MissingDigestAndTag",
                                 "failureReason": "Invalid request parameters: both tag and digest cannot be null"})
                continue
            if digest is not None and not _DIGEST_RE.match(digest):
                failures.append({"imageId": requested, "failureCode": "InvalidImageDigest",
                                 "failureReason": "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"})
                continue
            image = next((i for i in repository.images
                          if (digest is None or i.get_image_digest() == digest)
                          and (tag is None or tag in i.image_tags)), None)
            if image is None:
                if digest is not None and tag is not None and any(
                        i.get_image_digest() == digest for i in repository.images):
                    failures.append({"imageId": requested, "failureCode": "ImageTagDoesNotMatchDigest",
                                     "failureReason": "Invalid request parameters: image tag does not match digest"})
                else:
                    failures.append({"imageId": requested, "failureCode": "ImageNotFound",
                                     "failureReason": "Requested image not found"})
                continue
            image_digest = image.get_image_digest()
            manifest = image.image_manifest
            broken = _broken.get((self.region_name, repository_name, image_digest))
            if broken is not None:
                mode, code, reason = broken
                if mode == "failure":
                    failures.append({"imageId": requested, "failureCode": code, "failureReason": reason})
                    continue
                manifest = GARBAGE_MANIFEST
            returned_id = {"imageDigest": image_digest}
            if tag is not None:
                returned_id["imageTag"] = tag
            images.append({
                "registryId": repository.registry_id,
                "repositoryName": repository_name,
                "imageId": returned_id,
                "imageManifest": manifest,
                "imageManifestMediaType": image.image_manifest_media_type,
            })
        return {"images": images, "failures": failures}

    ECRBackend.batch_get_image = batch_get_image

    # ---- ListImages: pagination (tagStatus was already supported) ------
    def list_images(self: Any) -> ActionResult:
        repository_name = self._get_param("repositoryName")
        registry_id = self._get_param("registryId")
        status = _tag_status((self._get_param("filter") or {}).get("tagStatus"))
        images = self.ecr_backend.list_images(repository_name, registry_id, tag_status=status)
        ids = []
        for image in images:
            for tag in image.image_tags or [None]:
                entry = {"imageDigest": image.get_image_digest()}
                if tag is not None:
                    entry["imageTag"] = tag
                ids.append(entry)
        page, token = _paginate(ids, lambda e: e["imageDigest"] + "\0" + e.get("imageTag", ""),
                                self._get_param("maxResults"), self._get_param("nextToken"),
                                f"list:{repository_name}:{status}")
        result: dict[str, Any] = {"imageIds": page}
        if token:
            result["nextToken"] = token
        return ActionResult(result)

    ECRResponse.list_images = list_images

    apply_compute_patches(_paginate)


_DIGEST_RE = re.compile(r"^[0-9a-zA-Z_+.-]+:[0-9a-fA-F]{64}$")


# --------------------------------------------------------------------------
# Request counting and fault injection (WSGI middleware)
# --------------------------------------------------------------------------

@dataclass
class Fault:
    action: str  # an API action, or "*" for every action of ``service``
    remaining: int
    status: int
    code: str
    message: str
    repository: Optional[str] = None
    service: Optional[str] = None  # "ecr", "ecs", "lambda", ...; None = any
    region: Optional[str] = None  # None = any
    rate: float = 1.0  # the share of matching calls that fail (drawn from a seeded RNG)
    after: int = 0  # matching calls to let through before the fault starts

    def matches(self, service: str, action: str, repository: Optional[str], region: str) -> bool:
        return (self.remaining > 0
                and (self.action == "*" or self.action == action)
                and (self.service is None or self.service == service)
                and (self.repository is None or self.repository == repository)
                and (self.region is None or self.region == region))


@dataclass
class RequestRecord:
    action: str
    repository: Optional[str]
    faulted: bool
    service: str = ""
    region: str = ""


# Services whose X-Amz-Target prefix tells them apart when a request is unsigned.
_TARGET_SERVICES = {
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "AWSEvents": "events",
}
_CREDENTIAL_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_rest_routes: dict[str, list[tuple[str, re.Pattern[str], str]]] = {}
_rest_routes_lock = threading.Lock()


def _rest_action(service: str, method: str, path: str) -> Optional[str]:
    """The API action of a REST request (e.g. Lambda's ``GET
    /2015-03-31/functions/{FunctionName}/versions`` is ListVersionsByFunction),
    from botocore's own description of the service's HTTP bindings."""
    with _rest_routes_lock:
        routes = _rest_routes.get(service)
        if routes is None:
            routes = []
            try:
                import botocore.session

                model = botocore.session.get_session().get_service_model(service)
            except Exception:  # noqa: BLE001 - unknown service: no REST routes
                model = None
            if model is not None and model.protocol in ("rest-json", "rest-xml"):
                for name in model.operation_names:
                    http = model.operation_model(name).http
                    uri = http.get("requestUri", "").split("?", 1)[0]
                    literal = re.sub(r"\{[^}]+\}", "", uri)
                    pattern = "".join(
                        ("[^/]+" if not part.endswith("+}") else ".+") if part.startswith("{") else re.escape(part)
                        for part in re.split(r"(\{[^}]+\})", uri) if part)
                    routes.append((http.get("method", "GET"), re.compile(f"^{pattern}/?$"), name, len(literal)))
                # The most specific template (longest literal part) wins.
                routes.sort(key=lambda r: -r[3])
            routes = [(m, rx, n) for m, rx, n, *_ in routes]
            _rest_routes[service] = routes
    for route_method, regex, name in routes:
        if route_method == method and regex.match(path):
            return name
    return None


class _Middleware:
    """Counts requests per action, serves injected faults, and serialises
    access to moto's (unlocked) in-memory backend."""

    def __init__(self, app: Any, emulator: "Emulator") -> None:
        self.app = app
        self.emu = emulator

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        length = environ.get("CONTENT_LENGTH")
        if length:
            body = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return body

    @staticmethod
    def _action_of(environ: dict[str, Any], body: bytes) -> tuple[str, str, Optional[str]]:
        """(service, region, action) of a request; action None = not an API call."""
        service, region = "", REGION
        match = _CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match:
            region, service = match.group(1), match.group(2)
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            prefix, _, action = target.rpartition(".")
            return service or _TARGET_SERVICES.get(prefix, prefix), region, action
        if body and b"Action=" in body:
            from urllib.parse import parse_qs

            try:
                values = parse_qs(body.decode("utf-8")).get("Action")
            except UnicodeDecodeError:
                values = None
            if values:
                return service, region, values[0]
        if service:
            return service, region, _rest_action(service, environ.get("REQUEST_METHOD", "GET"),
                                                 environ.get("PATH_INFO", ""))
        return service, region, None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = self._read_body(environ)
        service, region, action = self._action_of(environ, body)
        if action is None or environ.get(UNCOUNTED_ENVIRON):
            return self._serve(environ, start_response)
        repository = None
        parsed: Any = None
        if body[:1] == b"{":
            try:
                parsed = json.loads(body)
                if isinstance(parsed, dict) and isinstance(parsed.get("repositoryName"), str):
                    repository = parsed["repositoryName"]
            except ValueError:
                pass
        fault = self.emu._take_fault(action, repository, service, region)
        self.emu._record(RequestRecord(action, repository, fault is not None, service, region))
        self.emu._enter()
        status: list[str] = []

        def capture(status_line: str, headers: Any, *args: Any) -> Any:
            status.append(status_line)
            return start_response(status_line, headers, *args)

        try:
            if self.emu.latency:
                time.sleep(self.emu.latency)
            chunks = self._answer(fault, environ, capture)
            # A listing's last page fires its repository's listing hooks (parsed only
            # while any are pending: a page of 1,000 imageDetails takes milliseconds).
            if (fault is None and service == "ecr" and action == "DescribeImages" and repository
                    and self.emu.pending_listing_hooks() and isinstance(parsed, dict) and not parsed.get("imageIds")
                    and status and status[0].startswith("200")):
                try:
                    response = json.loads(b"".join(chunks))
                except ValueError:
                    response = None
                if isinstance(response, dict) and not response.get("nextToken"):
                    self.emu._listing_completed(region, repository)
            return chunks
        finally:
            self.emu._leave()

    def _answer(self, fault: Optional[Fault], environ: dict[str, Any],
                start_response: Callable[..., Any]) -> list[bytes]:
        if fault is not None:
            payload = json.dumps({"__type": fault.code, "message": fault.message}).encode()
            start_response(f"{fault.status} {_REASONS.get(fault.status, 'Error')}", [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
                ("x-amzn-ErrorType", fault.code),
            ])
            return [payload]
        return self._serve(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        # Produce the whole response while holding the lock: moto is not thread-safe.
        with self.emu._backend_lock:
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


# --------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------

_shared: Optional["Emulator"] = None
_shared_lock = threading.Lock()


def shared() -> "Emulator":
    """The process-wide emulator, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.running:
            _shared = Emulator()
            _shared.start()
        return _shared


@dataclass
class ListingHook:
    """A change made as soon as a counted listing of a repository completes."""

    region: str
    repository: str
    digest: str
    tag: Optional[str]  # None = delete the image


class Emulator(ComputeMixin):
    """moto's ECR (plus ECS and Lambda), patched, served on http://127.0.0.1:<free port>.

    Every seeding and reading helper takes an optional ``region`` (default
    us-east-1); moto keeps one backend per region, so regions stay apart.

    Lifecycle: ``start()``, ``stop()``, ``reset()`` (or use as a context manager).
    Client side: ``endpoint``, ``client(counted=True, service="ecr", region=None)``,
    ``aws_env(region=None)``.
    Seeding (in-process, fast): ``create_repository(name, tags)``,
    ``push_image(repo, tags, pushed_at, size, via_api=False) -> digest``,
    ``push_index(...) -> IndexImage``, ``push_referrer(...) -> digest``,
    ``push_cosign_legacy(...) -> digest``, ``break_manifest(repo, digest, mode)``,
    ``set_pushed_at``, ``set_size``, ``protect_image``, ``vanish_before_delete``,
    ``tag_after_listing``, ``delete_after_listing``; ECS and Lambda: see ComputeMixin.
    Reading back: ``repositories()``, ``images(repo)``, ``digests(repo)``,
    ``tags_of(repo, digest)`` (through the API, uncounted), ``snapshot()``.
    Requests: ``request_counts(service=None)``, ``request_log()``, ``clear_request_counts()``,
    ``latency`` (seconds added to each request), ``max_in_flight()``,
    ``inject_fault(action, times, status, code, message, repository, region)``
    (action may be "svc:Action" or "svc:*"), ``fail_service(service, ...)``,
    ``pending_faults()``, ``clear_faults()``.
    """

    host = "127.0.0.1"

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None
        self._backend_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._faults: list[Fault] = []
        self._fault_rng = random.Random(20261201)
        self._log: list[RequestRecord] = []
        self._listing_hooks: list[ListingHook] = []
        self._uncounted_clients: dict[tuple[str, str], Any] = {}
        self._in_flight = 0
        self._max_in_flight = 0
        self.latency = 0.0  # seconds added to every counted request (outside the backend lock)
        self.endpoint = ""

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "Emulator":
        if self._server is not None:
            return self
        apply_patches()
        from werkzeug.serving import make_server

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app = _Middleware(DomainDispatcherApplication(create_backend_app), self)
        self._server = make_server(self.host, self._port, app, threaded=True,
                                   request_handler=_QuietHandler)
        self._server.open_connections = set()  # sockets, for stop() to close
        port = self._server.server_address[1]
        self.endpoint = f"http://{self.host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="ecr-emulator", daemon=True)
        self._thread.start()
        self.reset()
        return self

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        for connection in list(self._server.open_connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by the client
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every repository, image, tag, ECS and Lambda resource,
        request count, fault and hook, in every region."""
        from moto.moto_api._internal.models import moto_api_backend

        with self._backend_lock:
            moto_api_backend.reset()
            _protected.clear()
            _vanishing.clear()
            _broken.clear()
            self._reset_compute()
        with self._state_lock:
            self._faults.clear()
            self._fault_rng.seed(20261201)
            self._log.clear()
            self._listing_hooks.clear()
            self._max_in_flight = self._in_flight
        self.latency = 0.0

    # -- environment for a client process ---------------------------------
    def aws_env(self, region: Optional[str] = None) -> dict[str, str]:
        """The AWS_* variables that point an SDK at this emulator (and nowhere else)."""
        region = region or REGION
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, counted: bool = True, service: str = "ecr", region: Optional[str] = None) -> Any:
        """A boto3 client of ``service`` for this emulator (dummy credentials,
        no retries). With ``counted=False`` its requests are neither counted
        nor faulted: that is how the harness seeds and reads state back
        without disturbing a test."""
        import boto3
        from botocore.config import Config

        key = (service, region or REGION)
        if not counted and key in self._uncounted_clients:
            return self._uncounted_clients[key]
        client = boto3.session.Session().client(
            service, region_name=region or REGION, endpoint_url=self.endpoint,
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        if not counted:
            def mark(request: Any, **_: Any) -> None:
                request.headers[UNCOUNTED_HEADER] = "1"

            client.meta.events.register("before-sign", mark)
            self._uncounted_clients[key] = client  # clients are costly to make, and stateless
        return client

    # -- direct backend access (fast seeding) -------------------------------
    @property
    def backend(self) -> Any:
        """moto's ECR backend of the default region."""
        return self.ecr_backend()

    def ecr_backend(self, region: Optional[str] = None) -> Any:
        from moto.ecr.models import ecr_backends

        return ecr_backends[ACCOUNT_ID][region or REGION]

    def registry(self, region: Optional[str] = None) -> str:
        """This account's registry host, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com."""
        return f"{ACCOUNT_ID}.dkr.ecr.{region or REGION}.amazonaws.com"

    def image_uri(self, repo: str, tag: Optional[str] = None, digest: Optional[str] = None,
                  region: Optional[str] = None) -> str:
        """``<registry>/<repo>:<tag>``, ``<registry>/<repo>@<digest>`` (digest wins
        when both are given: that is how ECS and Lambda pin an image)."""
        if digest:
            return f"{self.registry(region)}/{repo}@{digest}"
        return f"{self.registry(region)}/{repo}:{tag or 'latest'}"

    def repository_arn(self, repo: str, region: Optional[str] = None) -> str:
        return f"arn:aws:ecr:{region or REGION}:{ACCOUNT_ID}:repository/{repo}"

    def create_repository(self, repo: str, tags: Optional[dict[str, str]] = None,
                          exist_ok: bool = True, region: Optional[str] = None) -> str:
        """Create a repository (with resource tags); returns its ARN."""
        with self._backend_lock:
            backend = self.ecr_backend(region)
            if repo in backend.repositories:
                if not exist_ok:
                    raise ValueError(f"repository {repo} exists")
                if tags:
                    backend.tag_resource(backend.repositories[repo].arn,
                                         [{"Key": k, "Value": v} for k, v in tags.items()])
                return backend.repositories[repo].arn
            created = backend.create_repository(
                repository_name=repo, registry_id=None, encryption_config=None,  # type: ignore[arg-type]
                image_scan_config=None, image_tag_mutability=None,  # type: ignore[arg-type]
                tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            )
            return created.arn

    def create_repositories(self, names: Iterable[str], region: Optional[str] = None) -> None:
        for name in names:
            self.create_repository(name, region=region)

    def tag_repository(self, repo: str, tags: dict[str, str], region: Optional[str] = None) -> None:
        self.create_repository(repo, tags=tags, region=region)

    @staticmethod
    def make_manifest(size: int = 0, seed: Optional[str] = None) -> str:
        """A unique Docker v2 image manifest (config + one layer)."""
        return image_graph.docker_manifest(size, seed)

    def push_image(self, repo: str, tags: Iterable[str] = (), pushed_at: Any = None,
                   size: Optional[int] = None, via_api: bool = False, region: Optional[str] = None) -> str:
        """Push a new, unique Docker v2 image (creating the repository if missing).

        ``tags`` may hold several tags for the one image; a tag already held
        by another image moves to this one (the other stays, maybe untagged).
        ``pushed_at`` is a datetime, a timedelta (that long ago) or epoch
        seconds. ``via_api`` pushes through boto3 PutImage instead of the
        backend. Returns the image digest."""
        tags = list(tags)
        size = size if size is not None else 30 * 1024 * 1024
        manifest = self.make_manifest(size)
        if via_api:
            digest = manifest_digest(manifest)
            client = self.client(counted=False, region=region)
            try:
                client.create_repository(repositoryName=repo)
            except client.exceptions.RepositoryAlreadyExistsException:
                pass
            for tag in tags or [None]:
                kwargs: dict[str, Any] = dict(repositoryName=repo, imageManifest=manifest,
                                              imageManifestMediaType=DOCKER_MANIFEST_V2, imageDigest=digest)
                if tag is not None:
                    kwargs["imageTag"] = tag
                client.put_image(**kwargs)
            with self._backend_lock:
                image = self._image(repo, digest, region)
                image.emu_size = size
                if pushed_at is not None:
                    image.image_pushed_at = utc(pushed_at)
            return digest
        return self._put(repo, manifest, DOCKER_MANIFEST_V2, tags, pushed_at, size, region)

    def bulk_push(self, repo: str, images: Iterable[tuple[Iterable[str], Any]],
                  size: Optional[int] = None, region: Optional[str] = None) -> list[str]:
        """Append many unique Docker v2 images to ``repo`` (created if missing)
        straight into the backend, for registries of 100,000 images: PutImage
        scans the whole repository on every push, this does not.

        ``images`` yields ``(tags, pushed_at)`` per image (``pushed_at`` as in
        ``push_image``; None = now). Each manifest is unique and its digest is
        the real sha256 of its bytes, as with ``push_image``; the manifest facts
        are computed here, not on the first request. Tags must not be held by
        any other image (none is moved). Returns the digests in order."""
        from moto.ecr.models import Image

        size = size if size is not None else 30 * 1024 * 1024
        nonce = uuid.uuid4().hex
        self.create_repository(repo, region=region)
        with self._backend_lock:
            backend = self.ecr_backend(region)
            repository = backend._get_repository(repo)
            held = {t for i in repository.images for t in i.image_tags}
            now = datetime.now(timezone.utc)
            digests: list[str] = []
            appended = []
            for n, (tags, pushed_at) in enumerate(images):
                tags = list(tags)
                clash = held.intersection(tags)
                if clash or len(set(tags)) != len(tags):
                    raise ValueError(f"bulk_push: tag(s) {sorted(clash) or tags} already held in {repo}")
                held.update(tags)
                manifest = image_graph.docker_manifest(size, f"bulk-{nonce}-{n}")
                digest = manifest_digest(manifest)
                image = Image(backend.account_id, tags[-1] if tags else None, manifest, repo,
                              DOCKER_MANIFEST_V2, digest)
                image.image_tags = tags
                image.emu_facts = image_graph.facts(manifest, DOCKER_MANIFEST_V2)
                image.emu_size = size
                image.image_pushed_at = now if pushed_at is None else utc(pushed_at)
                appended.append(image)
                digests.append(digest)
            repository.images.extend(appended)
        return digests

    def _put(self, repo: str, manifest: str, media_type: str, tags: Iterable[str] = (),
             pushed_at: Any = None, size: Optional[int] = None, region: Optional[str] = None) -> str:
        """PutImage in-process (the patched backend), once per tag."""
        digest = manifest_digest(manifest)
        self.create_repository(repo, region=region)
        with self._backend_lock:
            backend = self.ecr_backend(region)
            for tag in list(tags) or [None]:
                backend.put_image(repo, manifest, tag, media_type, digest)
            image = self._image(repo, digest, region)
            if size is not None:
                image.emu_size = int(size)
            if pushed_at is not None:
                image.image_pushed_at = utc(pushed_at)
        return digest

    def push_index(self, repo: str, tags: Iterable[str] = (), pushed_at: Any = None,
                   platforms: Iterable[str] = ("linux/amd64", "linux/arm64"), attestation: bool = True,
                   media_type: str = OCI_INDEX, children: Optional[Iterable[str]] = None,
                   size: Optional[int] = None, region: Optional[str] = None) -> IndexImage:
        """Push a multi-platform image the way ``docker buildx`` does.

        Without ``children``: one untagged image manifest per platform (OCI
        image manifests under an OCI index, Docker v2 under a Docker manifest
        list), and with ``attestation`` one untagged attestation manifest per
        platform (platform unknown/unknown, annotated with the platform
        manifest it describes); then the index listing them all, tagged
        with ``tags``. With ``children=[digests]`` the index lists those
        existing images instead (nested indexes, shared children).
        Children get ``pushed_at`` and ``size`` too. Returns what was pushed."""
        if media_type not in INDEX_MEDIA_TYPES:
            raise ValueError(f"media_type must be one of {sorted(INDEX_MEDIA_TYPES)}")
        entries: list[dict[str, Any]] = []
        result = IndexImage(digest="")
        if children is not None:
            with self._backend_lock:
                for child in children:
                    image = self._image(repo, child, region)
                    entries.append({"mediaType": image.image_manifest_media_type, "digest": child,
                                    "size": len(image.image_manifest.encode("utf-8"))})
        else:
            size = size if size is not None else 30 * 1024 * 1024
            child_type = DOCKER_MANIFEST_V2 if media_type == DOCKER_MANIFEST_LIST else OCI_MANIFEST
            for platform in platforms:
                descriptor = image_graph.platform_descriptor(platform)
                if child_type == DOCKER_MANIFEST_V2:
                    manifest = image_graph.docker_manifest(size)
                else:
                    manifest = image_graph.oci_image_manifest(size, platform=platform)
                digest = self._put(repo, manifest, child_type, (), pushed_at, size, region)
                result.platforms[platform] = digest
                entries.append({"mediaType": child_type, "digest": digest,
                                "size": len(manifest.encode("utf-8")), "platform": descriptor})
            if attestation:
                for platform, platform_digest in list(result.platforms.items()):
                    manifest = image_graph.attestation_manifest()
                    digest = self._put(repo, manifest, OCI_MANIFEST, (), pushed_at, None, region)
                    result.attestations.append(digest)
                    entries.append({
                        "mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest.encode("utf-8")),
                        "platform": {"architecture": "unknown", "os": "unknown"},
                        "annotations": {"vnd.docker.reference.digest": platform_digest,
                                        "vnd.docker.reference.type": "attestation-manifest"},
                    })
        result.children = [e["digest"] for e in entries]
        index = image_graph.index_manifest(media_type, entries)
        result.digest = self._put(repo, index, media_type, tags, pushed_at, None, region)
        return result

    def push_referrer(self, repo: str, subject_digest: str,
                      artifact_type: str = image_graph.COSIGN_SIGNATURE_ARTIFACT,
                      pushed_at: Any = None, region: Optional[str] = None) -> str:
        """Push an untagged OCI 1.1 referrer of ``subject_digest`` (a
        signature, attestation or SBOM with ``subject`` and ``artifactType``,
        as cosign/notation/oras push them). Returns its digest."""
        with self._backend_lock:
            try:
                subject = self._image(repo, subject_digest, region)
                subject_type = subject.image_manifest_media_type
                subject_size = len(subject.image_manifest.encode("utf-8"))
            except KeyError:  # OCI allows a referrer to arrive before its subject
                subject_type, subject_size = OCI_MANIFEST, 1234
        manifest = image_graph.referrer_manifest(subject_digest, subject_type, subject_size, artifact_type)
        return self._put(repo, manifest, OCI_MANIFEST, (), pushed_at, None, region)

    def push_cosign_legacy(self, repo: str, subject_digest: str, kind: str = "sig",
                           pushed_at: Any = None, region: Optional[str] = None) -> str:
        """Push what cosign pushes without OCI 1.1 referrers: an image tagged
        ``sha256-<hex of subject>.<kind>`` (kind sig, att or sbom). Returns its digest."""
        manifest = image_graph.cosign_legacy_manifest(subject_digest, kind)
        tag = image_graph.cosign_legacy_tag(subject_digest, kind)
        return self._put(repo, manifest, OCI_MANIFEST, (tag,), pushed_at, None, region)

    def break_manifest(self, repo: str, digest: str, mode: str = "failure", code: str = "KmsError",
                       reason: str = "The KMS key used to encrypt the image is disabled or inaccessible",
                       region: Optional[str] = None) -> None:
        """Make BatchGetImage unable to serve this image's manifest:
        ``mode="failure"`` answers a per-image failure (``code``, default
        KmsError), ``mode="garbage"`` returns text that is not JSON.
        DescribeImages still lists the image."""
        if mode not in ("failure", "garbage"):
            raise ValueError("mode must be 'failure' or 'garbage'")
        with self._backend_lock:
            self._image(repo, digest, region)  # must exist
            _broken[(region or REGION, repo, digest)] = (mode, code, reason)

    def _image(self, repo: str, digest: str, region: Optional[str] = None) -> Any:
        for image in self.ecr_backend(region)._get_repository(repo).images:
            if image.get_image_digest() == digest:
                return image
        raise KeyError(f"{repo}@{digest} not found")

    def set_pushed_at(self, repo: str, digest: str, when: Any, region: Optional[str] = None) -> None:
        with self._backend_lock:
            self._image(repo, digest, region).image_pushed_at = utc(when)

    def set_size(self, repo: str, digest: str, size: int, region: Optional[str] = None) -> None:
        with self._backend_lock:
            self._image(repo, digest, region).emu_size = int(size)

    def protect_image(self, repo: str, digest: str, code: str = "ImageReferencedByManifestList",
                      reason: str = "Requested image is referenced by an image index",
                      region: Optional[str] = None) -> None:
        """Make BatchDeleteImage answer a per-image failure for this image."""
        _protected[(region or REGION, repo, digest)] = (code, reason)

    def vanish_before_delete(self, repo: str, digest: str, region: Optional[str] = None) -> None:
        """Delete this image silently just before a BatchDeleteImage names it
        (as if someone else deleted it meanwhile): the call answers ImageNotFound."""
        _vanishing.add((region or REGION, repo, digest))

    # -- races with a listing ------------------------------------------------
    def tag_after_listing(self, repo: str, digest: str, tag: str, region: Optional[str] = None) -> None:
        """As soon as a counted DescribeImages listing of ``repo`` completes
        (a call without imageIds whose response has no nextToken), put
        ``tag`` on the image, as PutImage would (moving it from its holder).
        One-shot."""
        with self._state_lock:
            self._listing_hooks.append(ListingHook(region or REGION, repo, digest, tag))

    def delete_after_listing(self, repo: str, digest: str, region: Optional[str] = None) -> None:
        """As soon as a counted DescribeImages listing of ``repo`` completes,
        delete the image (someone else's delete). One-shot."""
        with self._state_lock:
            self._listing_hooks.append(ListingHook(region or REGION, repo, digest, None))

    def pending_listing_hooks(self) -> int:
        with self._state_lock:
            return len(self._listing_hooks)

    def _listing_completed(self, region: str, repo: str) -> None:
        with self._state_lock:
            due = [h for h in self._listing_hooks if h.region == region and h.repository == repo]
            self._listing_hooks = [h for h in self._listing_hooks if h not in due]
        if not due:
            return
        with self._backend_lock:
            backend = self.ecr_backend(region)
            for hook in due:
                try:
                    image = self._image(repo, hook.digest, region)
                except KeyError:
                    continue
                if hook.tag is None:
                    backend._get_repository(repo).images.remove(image)
                elif hook.tag not in image.image_tags:
                    backend.put_image(repo, image.image_manifest, hook.tag,
                                      image.image_manifest_media_type, hook.digest)

    # -- reading state back through the real API ---------------------------
    def repositories(self, region: Optional[str] = None) -> list[str]:
        names: list[str] = []
        client = self.client(counted=False, region=region)
        for page in client.get_paginator("describe_repositories").paginate():
            names.extend(r["repositoryName"] for r in page["repositories"])
        return sorted(names)

    def images(self, repo: str, region: Optional[str] = None) -> dict[str, dict[str, Any]]:
        """digest -> imageDetail, via DescribeImages (not counted)."""
        out: dict[str, dict[str, Any]] = {}
        client = self.client(counted=False, region=region)
        for page in client.get_paginator("describe_images").paginate(repositoryName=repo):
            for detail in page["imageDetails"]:
                out[detail["imageDigest"]] = detail
        return out

    def digests(self, repo: str, region: Optional[str] = None) -> set[str]:
        return set(self.images(repo, region))

    def tags_of(self, repo: str, digest: str, region: Optional[str] = None) -> set[str]:
        return set(self.images(repo, region)[digest].get("imageTags", []))

    def snapshot(self, region: Optional[str] = None) -> dict[str, dict[str, set[str]]]:
        """repo -> digest -> tags, straight from the backend (cheap, not counted)."""
        with self._backend_lock:
            return {name: {i.get_image_digest(): set(i.image_tags) for i in repo.images}
                    for name, repo in self.ecr_backend(region).repositories.items()}

    # -- request accounting and faults --------------------------------------
    def _record(self, record: RequestRecord) -> None:
        with self._state_lock:
            self._log.append(record)

    def request_counts(self, service: Optional[str] = None) -> dict[str, int]:
        """Requests received per API action (faulted ones included), not
        counting the harness's own reads (``client(counted=False)``); with
        ``service`` ("ecr", "ecs", "lambda", ...) only that service's."""
        with self._state_lock:
            return dict(Counter(r.action for r in self._log if service is None or r.service == service))

    def request_log(self) -> list[RequestRecord]:
        with self._state_lock:
            return list(self._log)

    def clear_request_counts(self) -> None:
        with self._state_lock:
            self._log.clear()
            self._max_in_flight = self._in_flight

    def _enter(self) -> None:
        with self._state_lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._state_lock:
            self._in_flight -= 1

    def max_in_flight(self) -> int:
        """The most counted requests that were being served at the same time."""
        with self._state_lock:
            return self._max_in_flight

    def inject_fault(self, action: str, times: int = 1, status: int = 400,
                     code: str = "ThrottlingException", message: str = "Rate exceeded",
                     repository: Optional[str] = None, region: Optional[str] = None,
                     rate: float = 1.0, after: int = 0) -> None:
        """Answer the next ``times`` calls of ``action`` with HTTP ``status``
        and error ``code``. ``action`` is an API action ("DescribeImages",
        any service), "service:Action" ("ecs:DescribeTasks") or "service:*"
        (every action of that service). With ``repository``, only calls
        naming that repository; with ``region``, only calls to that region.
        ``rate`` < 1 fails that share of the matching calls (a seeded RNG, so
        a test sees the same sequence every time); ``after`` lets that many
        matching calls through first (an outage in the middle of a run)."""
        service: Optional[str] = None
        if ":" in action:
            service, action = action.split(":", 1)
        with self._state_lock:
            self._faults.append(Fault(action, times, status, code, message, repository, service, region,
                                      rate, after))

    def fail_service(self, service: str, code: str = "AccessDeniedException", status: int = 400,
                     message: str = "User: arn:aws:sts::123456789012:assumed-role/ecr-janitor/test is not "
                                    "authorized to perform this action",
                     times: int = 1_000_000, region: Optional[str] = None) -> None:
        """Fail every call of one service (e.g. "ecs", "lambda") from now on
        (``times`` calls), e.g. to check that a caller fails closed."""
        self.inject_fault(f"{service}:*", times=times, status=status, code=code, message=message,
                          region=region)

    def pending_faults(self) -> int:
        with self._state_lock:
            return sum(f.remaining for f in self._faults)

    def clear_faults(self) -> None:
        with self._state_lock:
            self._faults.clear()

    def _take_fault(self, action: str, repository: Optional[str], service: str = "",
                    region: str = REGION) -> Optional[Fault]:
        with self._state_lock:
            for fault in self._faults:
                if not fault.matches(service, action, repository, region):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.rate < 1.0 and self._fault_rng.random() >= fault.rate:
                    continue
                fault.remaining -= 1
                return fault
        return None


from moto.moto_server.werkzeug_app import MotoRequestHandler as _MotoRequestHandler  # noqa: E402


class _QuietHandler(_MotoRequestHandler):
    """moto's request handler, without an access log, keeping connections open."""

    # The header and the body of a response are two writes: without this, the second
    # waits for the client's delayed acknowledgement of the first on a kept connection.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        self.server.open_connections.discard(self.connection)
        super().finish()

    def send_header(self, keyword: str, value: str) -> None:
        # werkzeug closes every connection; a client that did not ask for that keeps it.
        if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
            return
        super().send_header(keyword, value)

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # no per-request access log
        pass


class _NothingToDrain:
    """Stands in for the ``selectors`` module in werkzeug's server, which, after each
    response, reads and drops what the client sent next, to close the connection
    cleanly: on a kept connection that is the client's next request. The middleware
    reads every request's body whole, so nothing of a request is left to drain."""

    EVENT_READ = selectors.EVENT_READ

    class DefaultSelector:
        def register(self, *args: Any) -> None:
            pass

        def select(self, timeout: Optional[float] = None) -> list[Any]:
            return []

        def close(self) -> None:
            pass


def _keep_connections() -> None:
    """Makes werkzeug's server keep connections (see ``_NothingToDrain``)."""
    import werkzeug.serving

    if werkzeug.serving.selectors is not selectors and werkzeug.serving.selectors is not _NothingToDrain:
        raise RuntimeError("werkzeug.serving changed: check how it drains a connection before keeping it")
    werkzeug.serving.selectors = _NothingToDrain
