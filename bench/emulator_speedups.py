"""Bench-only speed-ups of the ECR emulator's hot paths, for repositories of 100,000 images.

The emulator answers like ECR, but a few of its paths cost time proportional to the whole
repository on every request, which real ECR does not: looking an image up by digest scans
the repository (DescribeImages with imageIds, BatchDeleteImage), and moto serializes every
imageDetail field by field (~0.2 ms per image: 20 s to list 100,000 images). In a benchmark
those costs would swamp what is measured (the clients), and they would not even be fair:
they grow with the number of calls a client makes, not with what ECR charges per call.

What changes here, and why the answers stay the same:

* ``TrackedImages``: the ``images`` list of a repository the bench seeded (``track()``), with
  a digest index kept up to date by its mutating methods (or rebuilt after any other
  mutation). Repositories without one are served by the emulator's code unchanged.
  ``Repository._get_image`` answers a digest lookup from it; a miss or a tag mismatch goes
  to the original, which raises exactly as before. Digests are unique in a repository, so
  the first match the original would find is the only one.
* BatchDeleteImage by digests: the emulator's own code runs on a short list of the
  repository's images, the requested ones plus every image index (nothing else can change
  its answer: an image is found by its digest, and only an index protects another image);
  what it removed from that list is then removed from the repository (found by bisection:
  the list is kept in digest order, which nothing else depends on).
* Listings (DescribeImages without imageIds, tagStatus ANY) sort the whole repository for
  every page: the sorted order is kept until the repository's membership changes, and the
  emulator's own pagination code runs on the slice the page needs.
* DescribeImages: each imageDetail is serialized by moto's own serializer once, then reused
  for as long as every field it is made from is unchanged.
* moto's request routing lists moto's package directory and the response class's methods
  on every request: both are computed once.
* Every response body is searched for an XML ``<RequestId>`` element with a regular
  expression (~10 ms for a page of 1,000 imageDetails): a JSON body that does not contain
  the text ``<RequestId>`` cannot match, so the search is skipped for it (the request id
  header is still generated the same way).
* DescribeImages copies each image it answers with (``copy.copy``), which for a moto model
  goes through pickling's protocol and moto's instance tracker: ~20 µs an image, 20 ms for
  a page of 1,000. ``Image.__copy__`` makes the same copy directly, and leaves it out of
  moto's ``instances_tracked`` (kept for moto's reset and debug dump: a listing of 100,000
  images would leave 100,000 copies there, which the garbage collector then walks ever
  after; the copies are never used again).
* BatchDeleteImage's answer is written with ``json.dumps`` instead of moto's serializer,
  which walks the response shape field by field (~4 ms for 100 image ids): the same text.
* A DescribeImages body is assembled from each imageDetail's cached JSON text instead of
  ``json.dumps`` of the whole document each time: the same text (``json.dumps`` writes a
  dict as its items joined by ``", "``, in insertion order).

``self_check()`` compares every answer against the emulator without these changes and
raises if anything differs; the bench runs it before measuring anything.

Also here: ``busy_seconds()``, the time the emulator spent serving requests (inside its
lock, so it adds up across concurrent calls), to tell emulator time from client time.
"""

from __future__ import annotations

import bisect
import json
import operator
import threading
import time
from typing import Any, Optional

import ecr_emulator

_enabled = False
_checking = False  # while self_check() runs: assembled bodies are compared with json.dumps
_installed = False
_install_lock = threading.Lock()
_busy = 0.0
_busy_lock = threading.Lock()
_detail_cache: dict[tuple, dict[str, Any]] = {}
# Listing scope -> (tracked images, their generation, images in listing order, their keys)
_order_cache: dict[str, tuple[Any, int, list[Any], list[str]]] = {}
_listing = threading.local()  # (scope, tracked images) while a listing is being answered


_digest_of = operator.attrgetter("_image_digest")


class TrackedImages(list):
    """A repository's images, kept sorted by digest, with a digest -> image index, the
    list of its image indexes and a generation number that changes with its membership.
    ``append`` and ``remove`` keep the index up to date; any other change rebuilds it."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self.generation = 0
        self._by_digest: Optional[dict[str, Any]] = None
        self._indexes: Optional[list[Any]] = None
        # Sorted by digest (listing order; order means nothing else): deletions find
        # their images by bisection. Cleared by anything that adds images.
        self._sorted = all(getattr(image, "_image_digest", None) for image in self)
        if self._sorted:
            list.sort(self, key=_digest_of)

    def by_digest(self) -> dict[str, Any]:
        if self._by_digest is None:
            self._by_digest = {image.get_image_digest(): image for image in self}
        return self._by_digest

    def indexes(self) -> list[Any]:
        """The image indexes (manifest lists) among these images, in list order."""
        if self._indexes is None:
            self._indexes = [image for image in self if image.graph.is_index]
        return self._indexes

    def _changed(self, added: bool) -> None:
        self.generation += 1
        if added:
            self._sorted = False

    def append(self, image: Any) -> None:
        super().append(image)
        self._changed(added=True)
        if self._by_digest is not None:
            self._by_digest[image.get_image_digest()] = image
        if self._indexes is not None and image.graph.is_index:
            self._indexes.append(image)

    def remove(self, image: Any) -> None:
        super().remove(image)
        self._changed(added=False)
        self._drop(image)

    def _drop(self, image: Any) -> None:
        if self._by_digest is not None and self._by_digest.get(image.get_image_digest()) is image:
            del self._by_digest[image.get_image_digest()]
        if self._indexes is not None and image in self._indexes:
            self._indexes.remove(image)

    def remove_all(self, gone: list[Any]) -> None:
        """Remove these members."""
        if not gone:
            return
        self._changed(added=False)
        for image in gone:
            at = bisect.bisect_left(self, image._image_digest, key=_digest_of) if self._sorted else -1
            if 0 <= at < len(self) and list.__getitem__(self, at) is image:
                list.__delitem__(self, at)
            else:
                list.remove(self, image)
            self._drop(image)

    def _mutator(name: str, adds: bool):  # noqa: N805 - builds methods below
        def method(self: "TrackedImages", *args: Any, **kwargs: Any) -> Any:
            self._changed(added=adds)
            self._by_digest = None
            self._indexes = None
            return getattr(list, name)(self, *args, **kwargs)
        method.__name__ = name
        return method

    extend = _mutator("extend", True)
    insert = _mutator("insert", True)
    pop = _mutator("pop", False)
    clear = _mutator("clear", False)
    sort = _mutator("sort", True)
    reverse = _mutator("reverse", True)
    __setitem__ = _mutator("__setitem__", True)
    __delitem__ = _mutator("__delitem__", False)
    __iadd__ = _mutator("__iadd__", True)
    __imul__ = _mutator("__imul__", True)
    del _mutator


def track(repository: Any) -> None:
    """Give a moto Repository a ``TrackedImages`` list."""
    repository.images = TrackedImages(repository.images)


def set_enabled(on: bool) -> None:
    global _enabled
    _enabled = on


def busy_seconds() -> float:
    with _busy_lock:
        return _busy


def install(emu: Any) -> None:
    """Install the speed-ups (idempotent; active while ``set_enabled(True)``) and the
    busy-time meter of ``emu``'s server."""
    global _installed
    with _install_lock:
        if not _installed:
            _install_patches()
            _installed = True
    middleware = emu._server.app
    if not isinstance(middleware.app, _BusyMeter):
        middleware.app = _BusyMeter(middleware.app)


class _BusyMeter:
    """Wraps the app the emulator's middleware calls with its backend lock held."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: Any, start_response: Any) -> Any:
        global _busy
        started = time.perf_counter()
        response = self.app(environ, start_response)
        body = [b"".join(response)]
        close = getattr(response, "close", None)
        if close is not None:
            close()
        spent = time.perf_counter() - started
        with _busy_lock:
            _busy += spent
        return body


def _install_patches() -> None:
    from moto.core.responses import ActionResult
    from moto.ecr import models as ecr_models
    from moto.ecr import responses as ecr_responses

    ecr_emulator.apply_patches()

    # Per request, moto lists its own package directory (some 180 stat calls) to route the
    # request, and lists the response class's methods with inspect: both are the same for
    # the whole run.
    from moto import backends as moto_backends
    from moto.core import responses as core_responses

    original_modules = moto_backends.list_of_moto_modules
    module_names: list[str] = []

    def list_of_moto_modules() -> Any:
        if not _enabled:
            return original_modules()
        if not module_names:
            module_names.extend(original_modules())
        return iter(module_names)

    moto_backends.list_of_moto_modules = list_of_moto_modules

    original_method_names = core_responses.method_names_from_class
    method_names: dict[Any, list[str]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        if not _enabled:
            return original_method_names(clazz)
        if clazz not in method_names:
            method_names[clazz] = original_method_names(clazz)
        return list(method_names[clazz])

    core_responses.method_names_from_class = method_names_from_class

    original_enrich = core_responses.BaseResponse._enrich_response

    def enrich_response(headers: Any, body: Any) -> Any:
        if _enabled and isinstance(body, str) and "<RequestId>" not in body:
            # The regular expression cannot match: what it would return is the body as is.
            headers, _ = original_enrich(headers, "")
            return headers, body
        return original_enrich(headers, body)

    core_responses.BaseResponse._enrich_response = staticmethod(enrich_response)
    Repository = ecr_models.Repository
    ECRBackend = ecr_models.ECRBackend
    ECRResponse = ecr_responses.ECRResponse

    original_get_image = Repository._get_image

    def get_image(self: Any, image_tag: Optional[str], image_digest: Optional[str]) -> Any:
        images = self.images
        if _enabled and image_digest and isinstance(images, TrackedImages):
            hit = images.by_digest().get(image_digest)
            if hit is not None and (not image_tag or image_tag in hit.image_tags):
                return hit
        return original_get_image(self, image_tag, image_digest)

    Repository._get_image = get_image

    original_batch_delete = ECRBackend.batch_delete_image

    def batch_delete_image(self: Any, repository_name: str, registry_id: Optional[str] = None,
                           image_ids: Optional[list[dict[str, str]]] = None) -> Any:
        repository = self.repositories.get(repository_name)
        full = getattr(repository, "images", None)
        if not (_enabled and isinstance(full, TrackedImages) and image_ids and not ecr_emulator._vanishing
                and all(isinstance(i, dict) and i.get("imageDigest") for i in image_ids)):
            return original_batch_delete(self, repository_name, registry_id, image_ids)
        # Every image the call can see: the requested ones and every image index (the
        # only images whose presence decides anything else). The emulator's code runs on
        # that short list; what it removed from it is then removed from the repository.
        index = full.by_digest()
        view, seen = [], set()
        for image in [index.get(i["imageDigest"]) for i in image_ids] + full.indexes():
            if image is not None and id(image) not in seen:
                seen.add(id(image))
                view.append(image)
        repository.images = list(view)
        try:
            return original_batch_delete(self, repository_name, registry_id, image_ids)
        finally:
            left = {id(image) for image in repository.images}
            repository.images = full
            full.remove_all([image for image in view if id(image) not in left])

    ECRBackend.batch_delete_image = batch_delete_image

    class DeletedIds(ActionResult):
        """A BatchDeleteImage answer written with ``json.dumps``, in the shape's member
        order, as moto's serializer writes it."""

        def execute_result(self, context: Any) -> Any:
            result = self.result
            status, headers, _ = ActionResult({}).execute_result(context)
            body = json.dumps({"imageIds": [_in_order(i, _ID_MEMBERS) for i in result["imageIds"]],
                               "failures": [_failure(f) for f in result["failures"]]})
            if _checking:
                _, _, expected = ActionResult(result).execute_result(context)
                assert body == expected, "written BatchDeleteImage body differs"
            return _with_body(status, headers, body)

    original_delete_response = ECRResponse.batch_delete_image

    def batch_delete_response(self: Any) -> Any:
        result = original_delete_response(self)
        if _enabled and isinstance(result, ActionResult) and _plain_delete_result(result.result):
            return DeletedIds(result.result)
        return result

    ECRResponse.batch_delete_image = batch_delete_response

    # What copy.copy made before (BaseModel.__new__ tracked it), without pickling's protocol;
    # with the speed-ups on, untracked.
    def copy_image(self: Any) -> Any:
        duplicate = object.__new__(type(self))
        duplicate.__dict__.update(self.__dict__)
        if not _enabled:
            type(self).instances_tracked.append(duplicate)
        return duplicate

    ecr_models.Image.__copy__ = copy_image

    original_paginate = ecr_emulator._paginate

    def paginate(items: list[Any], key: Any, max_results: Any = None, next_token: Optional[str] = None,
                 scope: str = "", *rest: Any, **kwargs: Any) -> Any:
        # A listing of a tracked repository (DescribeImages, tagStatus ANY): its images in
        # listing order are kept until the repository's membership changes, and the
        # emulator's pagination runs on the part of them the page needs (from the first
        # image after the token, one more than the page): same page, same token.
        source = getattr(_listing, "source", None)
        if (_enabled and source is not None and source[0] == scope and key is ecr_emulator._image_order_key
                and not rest and not kwargs):
            tracked = source[1]
            entry = _order_cache.get(scope)
            if entry is None or entry[0] is not tracked or entry[1] != tracked.generation \
                    or len(entry[2]) != len(items):
                ordered = sorted(items, key=key)
                entry = (tracked, tracked.generation, ordered, [key(i) for i in ordered])
                _order_cache[scope] = entry
            ordered, keys = entry[2], entry[3]
            try:
                limit = ecr_emulator.DEFAULT_MAX_RESULTS if max_results is None else int(max_results)
                start = bisect.bisect_right(keys, ecr_emulator._decode_token(next_token, scope)) if next_token else 0
            except Exception:  # noqa: BLE001 - the emulator's own code gives the error
                limit, start = -1, 0
            if 1 <= limit <= ecr_emulator.MAX_MAX_RESULTS:
                items = ordered[start:start + limit + 1]
        return original_paginate(items, key, max_results, next_token, scope, *rest, **kwargs)

    ecr_emulator._paginate = paginate

    original_describe_images = ECRResponse.describe_images

    class CachedDetails(ActionResult):
        def execute_result(self, context: Any) -> Any:
            result = dict(self.result)  # type: ignore[call-overload]
            details = result.pop("imageDetails")
            keys = [_detail_key(d) for d in details]
            missing = [d for d, k in zip(details, keys) if k not in _detail_cache]
            if missing:
                _, _, body = ActionResult({"imageDetails": missing}).execute_result(context)
                for detail, serialized in zip(missing, json.loads(body)["imageDetails"]):
                    _detail_cache[_detail_key(detail)] = (serialized, json.dumps(serialized))
            status, headers, body = ActionResult(result).execute_result(context)
            document = json.loads(body)
            # json.dumps(document) with "imageDetails" added last, from the cached texts.
            head = json.dumps(document)[:-1] + (", " if document else "")
            body = head + '"imageDetails": [' + ", ".join(_detail_cache[k][1] for k in keys) + "]}"
            if _checking:
                document["imageDetails"] = [_detail_cache[k][0] for k in keys]
                assert body == json.dumps(document), "assembled DescribeImages body differs"
            return _with_body(status, headers, body)

    def describe_images(self: Any) -> Any:
        _listing.source = None
        if _enabled and not self._get_param("imageIds"):
            name = self._get_param("repositoryName")
            status = (self._get_param("filter") or {}).get("tagStatus") or "ANY"
            images = getattr(self.ecr_backend.repositories.get(name), "images", None)
            if status == "ANY" and isinstance(images, TrackedImages):
                _listing.source = (f"images:{name}:ANY", images)
        try:
            result = original_describe_images(self)
        finally:
            _listing.source = None
        if _enabled and isinstance(result, ActionResult) and isinstance(result.result, dict) \
                and "imageDetails" in result.result:
            return CachedDetails(result.result)
        return result

    ECRResponse.describe_images = describe_images


def _with_body(status: Any, headers: Any, body: str) -> Any:
    """moto's response with a body written here: its Content-Length (when set) follows."""
    if "Content-Length" in headers:
        headers["Content-Length"] = str(len(body.encode("utf-8")))
    return status, headers, body


_ID_MEMBERS = ("imageDigest", "imageTag")
_FAILURE_MEMBERS = ("imageId", "failureCode", "failureReason")


def _in_order(fields: dict[str, Any], members: tuple[str, ...]) -> dict[str, Any]:
    """The fields moto's serializer writes (the shape's members with a value), in its order."""
    return {name: fields[name] for name in members if fields.get(name) is not None}


def _failure(failure: dict[str, Any]) -> dict[str, Any]:
    written = _in_order(failure, _FAILURE_MEMBERS)
    if "imageId" in written:
        written["imageId"] = _in_order(written["imageId"], _ID_MEMBERS)
    return written


def _plain_delete_result(result: Any) -> bool:
    """A BatchDeleteImage result of only image ids and failures with text values, which
    ``DeletedIds`` writes as moto would."""
    if not (isinstance(result, dict) and set(result) == {"imageIds", "failures"}):
        return False
    # A failure that names no image (MissingDigestAndTag) is left to moto: the self-check
    # does not ask for one, and the clients measured never cause one.
    if not all(isinstance(f, dict) and f.get("imageId") for f in result["failures"]):
        return False
    ids = result["imageIds"] + [f["imageId"] for f in result["failures"]]
    fields = [(i, _ID_MEMBERS) for i in ids] + [(f, _FAILURE_MEMBERS) for f in result["failures"]]
    return all(isinstance(d, dict) and set(d) <= set(members)
               and all(isinstance(v, str) for k, v in d.items() if k != "imageId")
               for d, members in fields)


def _detail_key(detail: Any) -> tuple:
    """Everything a serialized imageDetail is made from."""
    return (detail.registry_id, detail.repository_name, detail.get_image_digest(),
            tuple(getattr(detail, "image_tags", None) or ()), str(detail.image_pushed_at),
            getattr(detail, "emu_size", None), detail.image_manifest_media_type,
            detail.image_manifest)


# --------------------------------------------------------------------------
# Self-check: the same answers with and without the speed-ups
# --------------------------------------------------------------------------

def self_check(emu: Any) -> None:
    """Seed a small, varied repository; ask the same questions with the speed-ups off and
    on (restoring the repository in between); raise AssertionError on any difference."""
    from ecr_emulator import days_ago

    emu.reset()
    repo = "bench/self-check"
    bulk = emu.bulk_push(repo, [((), days_ago(30)), ((), days_ago(1)), (("v1",), days_ago(40)),
                                (("v2", "latest"), days_ago(2))] + [((), days_ago(20 + n)) for n in range(40)])
    plain = emu.push_image(repo, ["pushed"], pushed_at=days_ago(3))
    untagged_plain = emu.push_image(repo, pushed_at=days_ago(50))
    index = emu.push_index(repo, ["multi"], pushed_at=days_ago(5))
    referrer = emu.push_referrer(repo, index.digest, pushed_at=days_ago(5))
    backend_repo = emu.ecr_backend()._get_repository(repo)
    track(backend_repo)
    saved = [(image, list(image.image_tags), image.image_tag) for image in backend_repo.images]

    def restore() -> None:
        for image, tags, tag in saved:
            image.image_tags = list(tags)
            image.image_tag = tag
        backend_repo.images = TrackedImages(image for image, _, _ in saved)

    client = emu.client(counted=False)

    def ask() -> list[Any]:
        answers: list[Any] = []

        def call(name: str, **kwargs: Any) -> None:
            try:
                out = getattr(client, name)(**kwargs)
                out.pop("ResponseMetadata", None)
                answers.append((name, kwargs, out))
            except client.exceptions.ClientError as e:
                answers.append((name, kwargs, e.response["Error"]))

        token = None
        while True:
            kwargs: dict[str, Any] = {"repositoryName": repo, "maxResults": 7}
            if token:
                kwargs["nextToken"] = token
            page = client.describe_images(**kwargs)
            page.pop("ResponseMetadata", None)
            answers.append(("page", kwargs, page))
            token = page.get("nextToken")
            if not token:
                break
        call("describe_images", repositoryName=repo, maxResults=1000)
        call("describe_images", repositoryName=repo, maxResults=1001)
        call("describe_images", repositoryName=repo, nextToken="bm90IGEgdG9rZW4")
        call("describe_images", repositoryName=repo, maxResults=5,
             nextToken=ecr_emulator._encode_token(f"images:{repo}:ANY", bulk[7]))
        call("describe_images", repositoryName=repo, maxResults=5,
             nextToken=ecr_emulator._encode_token(f"images:{repo}:TAGGED", bulk[7]))
        for status in ("TAGGED", "UNTAGGED"):
            call("describe_images", repositoryName=repo, maxResults=1000, filter={"tagStatus": status})
        ids = [{"imageDigest": d} for d in bulk[:5] + [plain, index.digest, referrer]]
        call("describe_images", repositoryName=repo, imageIds=ids)
        call("describe_images", repositoryName=repo, imageIds=[{"imageDigest": bulk[2], "imageTag": "v1"}])
        call("describe_images", repositoryName=repo, imageIds=[{"imageDigest": bulk[2], "imageTag": "v2"}])
        call("describe_images", repositoryName=repo, imageIds=[{"imageDigest": "sha256:" + "0" * 64}])
        call("describe_images", repositoryName=repo, imageIds=[{"imageTag": "latest"}])
        call("batch_delete_image", repositoryName=repo, imageIds=[
            {"imageDigest": d} for d in bulk[4:30]] + [
            {"imageDigest": bulk[4]},  # twice in one call
            {"imageDigest": "sha256:" + "1" * 64},  # not there
            {"imageDigest": bulk[2], "imageTag": "v2"},  # tag of another image
            {"imageDigest": index.children[0]},  # listed by an index
            {"imageDigest": untagged_plain},
            {"imageTag": "latest"},  # one of two tags
        ])
        call("batch_delete_image", repositoryName=repo, imageIds=[{"imageDigest": d} for d in bulk[30:]])
        answers.append(("left", None, sorted((d, sorted(t)) for d, t in emu.snapshot()[repo].items())))
        again = client.describe_images(repositoryName=repo, maxResults=1000)
        again.pop("ResponseMetadata", None)
        answers.append(("after", None, again))
        return answers

    global _checking
    try:
        _checking = True
        set_enabled(False)
        restore()
        without = ask()
        set_enabled(True)
        restore()
        with_speedups = ask()
        # Twice: the second time from the serialization cache.
        restore()
        cached = ask()
    finally:
        _checking = False
        set_enabled(False)
        emu.reset()
    for name, answers in (("speed-ups", with_speedups), ("cached answers", cached)):
        if answers != without:
            for a, b in zip(without, answers):
                if a != b:
                    raise AssertionError(f"emulator {name} answer differently:\n  without: {str(a)[:1500]}"
                                         f"\n  with:    {str(b)[:1500]}")
            raise AssertionError(f"emulator {name} answer differently")
