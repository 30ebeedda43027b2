"""A local Amazon ECR emulator for ecr-janitor's tests and demo.

It is moto's ECR backend (moto[server], pinned in requirements-test.txt),
served over HTTP on 127.0.0.1 by a werkzeug server running in a background
thread of this process, with the gaps that matter to ecr-janitor patched so
that it behaves like the real service:

* DescribeRepositories, DescribeImages and ListImages honour ``maxResults``
  (1..1000, default 100) and return an opaque ``nextToken``. Items come back in
  an order that is stable but deliberately *not* sorted by name or push date,
  and tokens are keyed on the last item returned, so deleting images between
  two pages does not make the listing skip anything.
* DescribeImages honours ``filter.tagStatus`` (TAGGED / UNTAGGED / ANY).
* ``imagePushedAt`` can be back-dated and ``imageSizeInBytes`` set, from Python.
* PutImage that moves an existing tag onto a new manifest leaves the old image
  in the repository, untagged (moto deleted it).
* BatchDeleteImage returns the deleted image ids for untagged images too, and
  rejects more than 100 image ids like ECR does.
* Every request is counted per API action (from ``X-Amz-Target``), and faults
  (throttling or any status/code) can be injected for the next N calls of an
  action, optionally only for one repository.
* Image digests are the real sha256 of the manifest bytes.

moto keeps its state in process-wide globals, so only one Emulator should run
per process; ``shared()`` returns a lazily started process-wide instance.

Only loopback is ever bound or contacted.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import io
import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

DEFAULT_MAX_RESULTS = 100
MAX_MAX_RESULTS = 1000
MAX_BATCH_DELETE = 100
UNCOUNTED_HEADER = "x-ecr-emulator-uncounted"
UNCOUNTED_ENVIRON = "HTTP_X_ECR_EMULATOR_UNCOUNTED"


# --------------------------------------------------------------------------
# Patches to moto
# --------------------------------------------------------------------------

_patch_lock = threading.Lock()
_patched = False

# Images that BatchDeleteImage must refuse to delete: (repo, digest) -> (code, reason)
_protected: dict[tuple[str, str], tuple[str, str]] = {}
# Images that vanish just before the next BatchDeleteImage that names them.
_vanishing: set[tuple[str, str]] = set()


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


def manifest_digest(manifest: str) -> str:
    return "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()


def _encode_token(scope: str, after: str) -> str:
    raw = json.dumps({"s": scope, "a": after}, separators=(",", ":")).encode()
    mac = hashlib.sha256(b"ecr-emulator" + raw).hexdigest()[:16]
    return base64.urlsafe_b64encode(raw + b"|" + mac.encode()).decode().rstrip("=")


def _decode_token(token: str, scope: str) -> str:
    from moto.ecr.exceptions import InvalidParameterException

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
        raise InvalidParameterException(
            "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'"
        ) from None


def _paginate(items: list[Any], key: Callable[[Any], str], max_results: Any,
              next_token: Optional[str], scope: str) -> tuple[list[Any], Optional[str]]:
    """Key-based pagination: items are ordered by ``key``; a token names the
    last key returned, so items deleted meanwhile do not shift later pages."""
    from moto.ecr.exceptions import InvalidParameterException

    if max_results is None:
        limit = DEFAULT_MAX_RESULTS
    else:
        try:
            limit = int(max_results)
        except (TypeError, ValueError):
            limit = -1
        if not 1 <= limit <= MAX_MAX_RESULTS:
            raise InvalidParameterException(
                f"Invalid parameter at 'maxResults' failed to satisfy constraint: "
                f"'Member must have value between 1 and {MAX_MAX_RESULTS}, inclusive' (got {max_results!r})"
            )
    ordered = sorted(items, key=key)
    keys = [key(i) for i in ordered]
    start = 0
    if next_token:
        after = _decode_token(next_token, scope)
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
        _patched = True


def _apply_patches() -> None:
    import copy

    from moto.core.responses import ActionResult
    from moto.ecr import models as ecr_models
    from moto.ecr import responses as ecr_responses
    from moto.ecr.exceptions import (
        ImageAlreadyExistsException,
        InvalidParameterException,
        RepositoryNotFoundException,
        ValidationException,
    )

    Image = ecr_models.Image
    ECRBackend = ecr_models.ECRBackend
    ECRResponse = ecr_responses.ECRResponse

    # ---- imageSizeInBytes settable -------------------------------------
    original_size = Image.get_image_size_in_bytes

    def get_image_size_in_bytes(self: Any) -> Optional[int]:
        size = getattr(self, "emu_size", None)
        if size is not None:
            return size
        return original_size(self)

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

        for image_id in image_ids:
            key = (repository_name, image_id.get("imageDigest", ""))
            if key in _vanishing:
                _vanishing.discard(key)
                repository.images = [i for i in repository.images if i.get_image_digest() != key[1]]

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
            protected = _protected.get((repository_name, image_digest))
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
        if image_ids:
            images = list(self.ecr_backend.describe_images(repository_name, registry_id, image_ids))
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


_DIGEST_RE = re.compile(r"^[0-9a-zA-Z_+.-]+:[0-9a-fA-F]{64}$")


# --------------------------------------------------------------------------
# Request counting and fault injection (WSGI middleware)
# --------------------------------------------------------------------------

@dataclass
class Fault:
    action: str
    remaining: int
    status: int
    code: str
    message: str
    repository: Optional[str] = None


@dataclass
class RequestRecord:
    action: str
    repository: Optional[str]
    faulted: bool


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
    def _action_of(environ: dict[str, Any], body: bytes) -> Optional[str]:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return target.rsplit(".", 1)[-1]
        if body and b"Action=" in body:
            from urllib.parse import parse_qs

            try:
                values = parse_qs(body.decode("utf-8")).get("Action")
            except UnicodeDecodeError:
                values = None
            if values:
                return values[0]
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = self._read_body(environ)
        action = self._action_of(environ, body)
        if action is None or environ.get(UNCOUNTED_ENVIRON):
            return self._serve(environ, start_response)
        repository = None
        if body[:1] == b"{":
            try:
                parsed = json.loads(body)
                if isinstance(parsed, dict) and isinstance(parsed.get("repositoryName"), str):
                    repository = parsed["repositoryName"]
            except ValueError:
                pass
        fault = self.emu._take_fault(action, repository)
        self.emu._record(RequestRecord(action, repository, fault is not None))
        self.emu._enter()
        try:
            if self.emu.latency:
                time.sleep(self.emu.latency)
            return self._answer(fault, environ, start_response)
        finally:
            self.emu._leave()

    def _answer(self, fault: Optional[Fault], environ: dict[str, Any],
                start_response: Callable[..., Any]) -> Iterable[bytes]:
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

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
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

_seq = itertools.count(1)
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


class Emulator:
    """moto's ECR, patched, served on http://127.0.0.1:<free port>.

    Lifecycle: ``start()``, ``stop()``, ``reset()`` (or use as a context manager).
    Client side: ``endpoint``, ``client(counted=True)``, ``aws_env()``.
    Seeding (in-process, fast): ``create_repository(name, tags)``,
    ``push_image(repo, tags, pushed_at, size, via_api=False) -> digest``,
    ``set_pushed_at``, ``set_size``, ``protect_image``, ``vanish_before_delete``.
    Reading back: ``repositories()``, ``images(repo)``, ``digests(repo)``,
    ``tags_of(repo, digest)`` (through the API, uncounted), ``snapshot()``.
    Requests: ``request_counts()``, ``request_log()``, ``clear_request_counts()``,
    ``latency`` (seconds added to each request), ``max_in_flight()``,
    ``inject_fault(action, times, status, code, message, repository)``,
    ``pending_faults()``.
    """

    host = "127.0.0.1"

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None
        self._backend_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._faults: list[Fault] = []
        self._log: list[RequestRecord] = []
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
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every repository, image, tag, request count and fault."""
        from moto.moto_api._internal.models import moto_api_backend

        with self._backend_lock:
            moto_api_backend.reset()
            _protected.clear()
            _vanishing.clear()
        with self._state_lock:
            self._faults.clear()
            self._log.clear()
            self._max_in_flight = self._in_flight
        self.latency = 0.0

    # -- environment for a client process ---------------------------------
    def aws_env(self) -> dict[str, str]:
        """The AWS_* variables that point an SDK at this emulator (and nowhere else)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, counted: bool = True) -> Any:
        """A boto3 ECR client for this emulator (dummy credentials, no retries).
        With ``counted=False`` its requests are neither counted nor faulted:
        that is how the harness reads state back without disturbing a test."""
        import boto3
        from botocore.config import Config

        client = boto3.session.Session().client(
            "ecr", region_name=REGION, endpoint_url=self.endpoint,
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        if not counted:
            def mark(request: Any, **_: Any) -> None:
                request.headers[UNCOUNTED_HEADER] = "1"

            client.meta.events.register("before-sign.ecr.*", mark)
        return client

    # -- direct backend access (fast seeding) -------------------------------
    @property
    def backend(self) -> Any:
        from moto.ecr.models import ecr_backends

        return ecr_backends[ACCOUNT_ID][REGION]

    def repository_arn(self, repo: str) -> str:
        return f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{repo}"

    def create_repository(self, repo: str, tags: Optional[dict[str, str]] = None,
                          exist_ok: bool = True) -> str:
        """Create a repository (with resource tags); returns its ARN."""
        with self._backend_lock:
            backend = self.backend
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

    def create_repositories(self, names: Iterable[str]) -> None:
        for name in names:
            self.create_repository(name)

    def tag_repository(self, repo: str, tags: dict[str, str]) -> None:
        self.create_repository(repo, tags=tags)

    @staticmethod
    def make_manifest(size: int = 0, seed: Optional[str] = None) -> str:
        """A unique Docker v2 image manifest (config + one layer)."""
        seed = seed or f"{next(_seq)}-{uuid.uuid4()}"
        config_digest = "sha256:" + hashlib.sha256(f"config-{seed}".encode()).hexdigest()
        layer_digest = "sha256:" + hashlib.sha256(f"layer-{seed}".encode()).hexdigest()
        layer_size = max(size - 1500, 1) if size else 1024 * 1024
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_V2,
            "config": {"mediaType": DOCKER_CONFIG_V1, "size": 1500, "digest": config_digest},
            "layers": [{"mediaType": DOCKER_LAYER, "size": layer_size, "digest": layer_digest}],
        }
        return json.dumps(manifest, indent=3)

    def push_image(self, repo: str, tags: Iterable[str] = (), pushed_at: Any = None,
                   size: Optional[int] = None, via_api: bool = False) -> str:
        """Push a new, unique image (creating the repository if missing).

        ``tags`` may hold several tags for the one image; a tag already held
        by another image moves to this one (the other stays, maybe untagged).
        ``pushed_at`` is a datetime, a timedelta (that long ago) or epoch
        seconds. ``via_api`` pushes through boto3 PutImage instead of the
        backend. Returns the image digest."""
        tags = list(tags)
        size = size if size is not None else 30 * 1024 * 1024
        manifest = self.make_manifest(size)
        digest = manifest_digest(manifest)
        if via_api:
            client = self.client(counted=False)
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
        else:
            self.create_repository(repo)
            with self._backend_lock:
                for tag in tags or [None]:
                    self.backend.put_image(repo, manifest, tag, DOCKER_MANIFEST_V2, digest)
        with self._backend_lock:
            image = self._image(repo, digest)
            image.emu_size = size
            if pushed_at is not None:
                image.image_pushed_at = utc(pushed_at)
        return digest

    def _image(self, repo: str, digest: str) -> Any:
        for image in self.backend._get_repository(repo).images:
            if image.get_image_digest() == digest:
                return image
        raise KeyError(f"{repo}@{digest} not found")

    def set_pushed_at(self, repo: str, digest: str, when: Any) -> None:
        with self._backend_lock:
            self._image(repo, digest).image_pushed_at = utc(when)

    def set_size(self, repo: str, digest: str, size: int) -> None:
        with self._backend_lock:
            self._image(repo, digest).emu_size = int(size)

    def protect_image(self, repo: str, digest: str, code: str = "ImageReferencedByManifestList",
                      reason: str = "Requested image is referenced by an image index") -> None:
        """Make BatchDeleteImage answer a per-image failure for this image."""
        _protected[(repo, digest)] = (code, reason)

    def vanish_before_delete(self, repo: str, digest: str) -> None:
        """Delete this image silently just before a BatchDeleteImage names it
        (as if someone else deleted it meanwhile): the call answers ImageNotFound."""
        _vanishing.add((repo, digest))

    # -- reading state back through the real API ---------------------------
    def repositories(self) -> list[str]:
        names: list[str] = []
        for page in self.client(counted=False).get_paginator("describe_repositories").paginate():
            names.extend(r["repositoryName"] for r in page["repositories"])
        return sorted(names)

    def images(self, repo: str) -> dict[str, dict[str, Any]]:
        """digest -> imageDetail, via DescribeImages (not counted)."""
        out: dict[str, dict[str, Any]] = {}
        for page in self.client(counted=False).get_paginator("describe_images").paginate(repositoryName=repo):
            for detail in page["imageDetails"]:
                out[detail["imageDigest"]] = detail
        return out

    def digests(self, repo: str) -> set[str]:
        return set(self.images(repo))

    def tags_of(self, repo: str, digest: str) -> set[str]:
        return set(self.images(repo)[digest].get("imageTags", []))

    def snapshot(self) -> dict[str, dict[str, set[str]]]:
        """repo -> digest -> tags, straight from the backend (cheap, not counted)."""
        with self._backend_lock:
            return {name: {i.get_image_digest(): set(i.image_tags) for i in repo.images}
                    for name, repo in self.backend.repositories.items()}

    # -- request accounting and faults --------------------------------------
    def _record(self, record: RequestRecord) -> None:
        with self._state_lock:
            self._log.append(record)

    def request_counts(self) -> dict[str, int]:
        """Requests received per API action (faulted ones included), not
        counting the harness's own reads (``client(counted=False)``)."""
        with self._state_lock:
            return dict(Counter(r.action for r in self._log))

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
                     repository: Optional[str] = None) -> None:
        """Answer the next ``times`` calls of ``action`` (e.g. "DescribeImages")
        with HTTP ``status`` and error ``code``; with ``repository``, only calls
        naming that repository."""
        with self._state_lock:
            self._faults.append(Fault(action, times, status, code, message, repository))

    def pending_faults(self) -> int:
        with self._state_lock:
            return sum(f.remaining for f in self._faults)

    def _take_fault(self, action: str, repository: Optional[str]) -> Optional[Fault]:
        with self._state_lock:
            for fault in self._faults:
                if fault.action == action and fault.remaining > 0 and (
                        fault.repository is None or fault.repository == repository):
                    fault.remaining -= 1
                    return fault
        return None


from moto.moto_server.werkzeug_app import MotoRequestHandler as _MotoRequestHandler  # noqa: E402


class _QuietHandler(_MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # no per-request access log
        pass
