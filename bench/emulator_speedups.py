"""Bench-only speed-ups of the ECR emulator's hot paths, for repositories of 100,000 images.

The emulator answers like ECR, but a few of its paths cost time proportional to the whole
repository on every request, which real ECR does not: looking an image up by digest scans
the repository (DescribeImages with imageIds, BatchDeleteImage), and moto serializes every
imageDetail field by field (~0.2 ms per image: 20 s to list 100,000 images). In a benchmark
those costs would swamp what is measured (the clients), and they would not even be fair:
they grow with the number of calls a client makes, not with what ECR charges per call.

Nor would its per-request overhead be: the emulator serves one request at a time, in one
Python process, so every millisecond it spends on a request is a millisecond no other
client call is served, and that caps what concurrent calls can gain, as ECR does not.

What changes here, and why the answers stay the same:

* ``TrackedImages``: the ``images`` list of a repository the bench seeded (``track()``), with
  a digest index, each image's place in the list and the list of its image indexes, kept
  up to date by its mutating methods (or rebuilt after any other mutation). Repositories
  without one are served by the emulator's code unchanged. ``Repository._get_image``
  answers a digest lookup from it; a miss or a tag mismatch goes to the original, which
  raises exactly as before. Digests are unique in a repository, so the first match the
  original would find is the only one.
* BatchDeleteImage by digests: the emulator's own code runs on a short list of the
  repository's images, the requested ones plus every image index (nothing else can change
  its answer: an image is found by its digest, and only an index protects another image);
  what it removed from that list is then removed from the repository, each by moving the
  list's last image into its place (the list's order is not answered from: listings sort).
* DescribeImages of a tracked repository, by digests or listing (tagStatus ANY): the page
  comes from the repository's images in listing order, kept until its membership changes
  (the emulator sorts the whole repository for every page), and the body is assembled
  from each imageDetail's JSON text, serialized by moto once and reused for as long as
  every field it is made from is unchanged (moto serializes field by field, ~0.2 ms an
  image). ``json.dumps`` writes a dict as its items joined by ", ", in insertion order.
* ``_Direct``: those DescribeImages and BatchDeleteImage requests (once their imageDetail
  texts are kept) are answered from the same functions without Flask and moto's request
  dispatch (~2 ms a request); the answer's headers are those moto sends.
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

``self_check()`` compares every answer, and the repository after every deletion, against
the emulator without these changes and raises if anything differs; the bench runs it
before measuring anything, and `make test` runs it too.

Also here: ``busy_seconds()``, the time the emulator spent serving requests (inside its
lock, so it adds up across concurrent calls), to tell emulator time from client time.
"""

from __future__ import annotations

import bisect
import copy
import json
import operator
import threading
import time
from typing import Any, Optional

import ecr_emulator

_enabled = False
_installed = False
_install_lock = threading.Lock()
_busy = 0.0
_busy_lock = threading.Lock()
# id(image) -> (image, the values and the size its imageDetail is made from, that
# imageDetail's JSON text)
_text_cache: dict[int, tuple[Any, tuple, Any, str]] = {}


class TrackedImages(list):
    """A repository's images, with a digest -> image index, each image's place in the
    list, the list of its image indexes (in push order) and a generation number that
    changes with its membership. ``append``, ``remove`` and ``remove_all`` keep them up to
    date; any other change rebuilds them.

    ``remove_all`` moves the last image into each removed image's place: removing 100
    images from 100,000 then costs 100 steps, not 100 moves of the list's tail. The list's
    order then is not push order, which nothing answers from: listings sort, digests and
    tags are unique, and the indexes keep their own list."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self.generation = 0
        self._by_digest: Optional[dict[str, Any]] = None
        self._places: Optional[dict[int, int]] = None
        self._indexes: list[Any] = [image for image in self if image.graph.is_index]
        self._order: Optional[tuple[int, list[Any], list[str]]] = None
        # Built now, when the bench sets a registry up, rather than by the first request
        # of a measured run.
        self.by_digest()
        self.places()
        self.listing_order()

    def by_digest(self) -> dict[str, Any]:
        if self._by_digest is None:
            self._by_digest = {image.get_image_digest(): image for image in self}
        return self._by_digest

    def places(self) -> dict[int, int]:
        """id(image) -> its place in this list."""
        if self._places is None:
            self._places = {id(image): at for at, image in enumerate(self)}
        return self._places

    def listing_order(self) -> tuple[list[Any], list[str]]:
        """These images in the emulator's listing order, and their keys (kept until the
        membership changes)."""
        if self._order is None or self._order[0] != self.generation:
            ordered = sorted(self, key=ecr_emulator._image_order_key)
            self._order = (self.generation, ordered, [ecr_emulator._image_order_key(i) for i in ordered])
        return self._order[1], self._order[2]

    def indexes(self) -> list[Any]:
        """The image indexes (manifest lists) among these images, in push order."""
        return self._indexes

    def append(self, image: Any) -> None:
        super().append(image)
        self.generation += 1
        if self._by_digest is not None:
            self._by_digest[image.get_image_digest()] = image
        if self._places is not None:
            self._places[id(image)] = len(self) - 1
        if image.graph.is_index:
            self._indexes.append(image)

    def remove(self, image: Any) -> None:
        super().remove(image)
        self.generation += 1
        self._places = None
        self._drop(image)

    def _drop(self, image: Any) -> None:
        if self._by_digest is not None and self._by_digest.get(image.get_image_digest()) is image:
            del self._by_digest[image.get_image_digest()]
        if image in self._indexes:
            self._indexes.remove(image)

    def remove_all(self, gone: list[Any]) -> None:
        """Remove these members, each by moving the last image into its place."""
        if not gone:
            return
        self.generation += 1
        places = self.places()
        for image in gone:
            at = places.pop(id(image))
            last = list.pop(self)
            if last is not image:
                list.__setitem__(self, at, last)
                places[id(last)] = at
            self._drop(image)

    def _mutator(name: str):  # noqa: N805 - builds methods below
        def method(self: "TrackedImages", *args: Any, **kwargs: Any) -> Any:
            self.generation += 1
            self._by_digest = None
            self._places = None
            answer = getattr(list, name)(self, *args, **kwargs)
            self._indexes = [image for image in self if image.graph.is_index]
            return answer
        method.__name__ = name
        return method

    extend = _mutator("extend")
    insert = _mutator("insert")
    pop = _mutator("pop")
    clear = _mutator("clear")
    sort = _mutator("sort")
    reverse = _mutator("reverse")
    __setitem__ = _mutator("__setitem__")
    __delitem__ = _mutator("__delitem__")
    __iadd__ = _mutator("__iadd__")
    __imul__ = _mutator("__imul__")
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
        middleware.app = _BusyMeter(_Direct(middleware.app))


class _Direct:
    """Answers DescribeImages and BatchDeleteImage of a tracked repository (as the patched
    moto code below would, from the same functions) without going through Flask and moto's
    request dispatch, which cost ~2 ms a request; anything else, or any request these
    functions leave to the emulator, goes to moto's app. Called with the backend lock held."""

    _ACTIONS = {ecr_emulator.TARGET_PREFIX + "DescribeImages", ecr_emulator.TARGET_PREFIX + "BatchDeleteImage"}

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: Any, start_response: Any) -> Any:
        body = self._answer(environ) if _enabled and environ.get("HTTP_X_AMZ_TARGET") in self._ACTIONS else None
        if body is None:
            return self.app(environ, start_response)
        from moto.utilities.aws_headers import gen_amzn_requestid_long

        data = body.encode("utf-8")
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"),
                                  ("x-amzn-requestid", gen_amzn_requestid_long()),
                                  ("Content-Length", str(len(data))), ("Access-Control-Allow-Origin", "*")])
        return [data]

    @staticmethod
    def _answer(environ: Any) -> Optional[str]:
        stream = environ["wsgi.input"]
        try:
            request = json.loads(stream.read())
        except ValueError:
            return None
        finally:
            stream.seek(0)
        match = ecr_emulator._CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        from moto.ecr.models import ecr_backends

        backend = ecr_backends[ecr_emulator.ACCOUNT_ID][match.group(1) if match else ecr_emulator.REGION]
        if not isinstance(request, dict):
            return None
        if environ["HTTP_X_AMZ_TARGET"].endswith(".DescribeImages"):
            return _describe_body(backend, request.get)
        return _delete_body(backend, request)


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

    # What copy.copy made before (BaseModel.__new__ tracked it), without pickling's protocol;
    # with the speed-ups on, untracked.
    def copy_image(self: Any) -> Any:
        duplicate = object.__new__(type(self))
        duplicate.__dict__.update(self.__dict__)
        if not _enabled:
            type(self).instances_tracked.append(duplicate)
        return duplicate

    ecr_models.Image.__copy__ = copy_image

    _install_describe_images(ECRResponse, ActionResult)


def _install_describe_images(ECRResponse: Any, ActionResult: Any) -> None:  # noqa: N803 - classes
    """DescribeImages of a tracked repository, without a filter and by digests or listing:
    the page (or the ids' images) found from the kept listing order (or the digest index),
    the body assembled from each image's kept imageDetail text. Anything else goes to the
    emulator's own code."""

    class Details(ActionResult):
        """An answer with these images' imageDetails (added last) and ``rest``."""

        def __init__(self, rest: dict[str, Any], images: list[Any]) -> None:
            super().__init__(rest)
            self.images = images

        def execute_result(self, context: Any) -> Any:
            texts = _detail_texts(self.images, lambda details: ActionResult(
                {"imageDetails": details}).execute_result(context)[2])
            status, headers, _ = ActionResult({}).execute_result(context)
            return _with_body(status, headers, _with_details(self.result, texts))

    original = ECRResponse.describe_images

    def describe_images(self: Any) -> Any:
        found = _tracked_images(self.ecr_backend, self._get_param) if _enabled else None
        return original(self) if found is None else Details(*found)

    ECRResponse.describe_images = describe_images


def _tracked_images(backend: Any, param: Any) -> Optional[tuple[dict[str, Any], list[Any]]]:
    """For a DescribeImages request (``param``: its parameters), without a filter, of a
    tracked repository, by digests or listing: the answer's fields besides imageDetails,
    and the images it details. None: the emulator's own code answers."""
    repository = backend.repositories.get(param("repositoryName"))
    images = getattr(repository, "images", None)
    status = param("filter")
    if not isinstance(images, TrackedImages) or param("registryId") is not None \
            or not (status is None or (isinstance(status, dict) and status.get("tagStatus") in (None, "ANY"))):
        return None
    ids = param("imageIds")
    if ids:
        found = _by_digests(images, ids)
        return None if found is None else ({}, found)
    if ids is not None:
        return None
    page = _listing_page(repository.name, images, param("maxResults"), param("nextToken"))
    return None if page is None else ({"nextToken": page[1]} if page[1] else {}, page[0])


def _describe_body(backend: Any, param: Any) -> Optional[str]:
    """A DescribeImages answer's text, when ``_tracked_images`` finds one and every image's
    imageDetail text is kept already (else None: moto's code answers, and keeps them)."""
    found = _tracked_images(backend, param)
    if found is None:
        return None
    texts = [_kept_text(image) for image in found[1]]
    return None if None in texts else _with_details(found[0], texts)


def _with_details(rest: dict[str, Any], texts: list[str]) -> str:
    """``json.dumps(rest)`` with "imageDetails" added last, from their texts."""
    return json.dumps(rest)[:-1] + (", " if rest else "") + '"imageDetails": [' + ", ".join(texts) + "]}"


def _delete_body(backend: Any, request: dict[str, Any]) -> Optional[str]:
    """A BatchDeleteImage answer's text, for 1 to 100 ids that are digests alone in a
    tracked repository (else None: moto's code answers)."""
    ids = request.get("imageIds")
    repository = backend.repositories.get(request.get("repositoryName"))
    if not (isinstance(getattr(repository, "images", None), TrackedImages) and set(request) <= {"repositoryName", "imageIds"}
            and _digests_alone(ids, ecr_emulator.MAX_BATCH_DELETE)):
        return None
    result = backend.batch_delete_image(repository.name, None, ids)
    if not _plain_delete_result(result):
        raise AssertionError(f"BatchDeleteImage result the bench cannot write: {result!r}")
    return _deleted_ids_text(result)


def _by_digests(images: "TrackedImages", ids: Any) -> Optional[list[Any]]:
    """The images these ids name, first mention first, when every id is a digest alone
    of an image there (else None: the emulator answers, and fails the call as ECR does)."""
    if not _digests_alone(ids, ecr_emulator.MAX_IMAGE_IDS):
        return None
    index = images.by_digest()
    found: dict[str, Any] = {}
    for image_id in ids:
        image = index.get(image_id["imageDigest"])
        if image is None:
            return None
        found.setdefault(image_id["imageDigest"], image)
    return list(found.values())


def _digests_alone(ids: Any, most: int) -> bool:
    """1 to ``most`` image ids, each a digest (text) alone."""
    return isinstance(ids, list) and 1 <= len(ids) <= most and all(
        isinstance(i, dict) and list(i) == ["imageDigest"] and isinstance(i["imageDigest"], str) for i in ids)


def _listing_page(name: str, images: "TrackedImages", max_results: Any,
                  next_token: Any) -> Optional[tuple[list[Any], Optional[str]]]:
    """A listing's page and next token, as the emulator's pagination makes them, from
    the repository's images in listing order (kept while its membership is unchanged);
    None when the request is not a valid one (the emulator gives the error)."""
    if max_results is None:
        limit = ecr_emulator.DEFAULT_MAX_RESULTS
    elif type(max_results) is int and 1 <= max_results <= ecr_emulator.MAX_MAX_RESULTS:
        limit = max_results
    else:
        return None
    scope = f"images:{name}:ANY"
    ordered, keys = images.listing_order()
    start = 0
    if next_token:
        try:
            start = bisect.bisect_right(keys, ecr_emulator._decode_token(next_token, scope))
        except Exception:  # noqa: BLE001 - the emulator's own code gives the error
            return None
    token = None
    if start + limit < len(ordered):
        token = ecr_emulator._encode_token(scope, keys[start + limit - 1])
    return ordered[start:start + limit], token


def _detail_texts(images: list[Any], serialize: Any) -> list[str]:
    """Each image's imageDetail as JSON text, serialized by moto (``serialize``: details ->
    response body) once and kept for as long as every field it is made from is unchanged."""
    texts = [_kept_text(image) for image in images]
    missing = [image for image, text in zip(images, texts) if text is None]
    if missing:
        details = []
        for image in missing:  # as the emulator's DescribeImages answers it
            detail = copy.copy(image)
            if not detail.image_tags:
                del detail.image_tags
            details.append(detail)
        for image, serialized in zip(missing, json.loads(serialize(details))["imageDetails"]):
            _text_cache[id(image)] = (image, *_detail_fields(image), json.dumps(serialized))
    return [text if text is not None else _text_cache[id(image)][3] for image, text in zip(images, texts)]


def _kept_text(image: Any) -> Optional[str]:
    """The kept imageDetail text of this image, if every field it was made from is unchanged."""
    entry = _text_cache.get(id(image))
    if entry is None or entry[0] is not image or entry[1] != _DETAIL_VALUES(image) \
            or entry[2] != image.__dict__.get("emu_size"):
        return None
    return entry[3]


def _with_body(status: Any, headers: Any, body: str) -> Any:
    """moto's response with a body written here: its Content-Length (when set) follows."""
    if "Content-Length" in headers:
        headers["Content-Length"] = str(len(body.encode("utf-8")))
    return status, headers, body


_ID_MEMBERS = ("imageDigest", "imageTag")
_FAILURE_MEMBERS = ("imageId", "failureCode", "failureReason")


def _deleted_ids_text(result: dict[str, Any]) -> str:
    """A BatchDeleteImage answer's text, as moto's serializer writes it (the shape's
    members in order), with ``json.dumps``."""
    return json.dumps({"imageIds": [_in_order(i, _ID_MEMBERS) for i in result["imageIds"]],
                       "failures": [_failure(f) for f in result["failures"]]})


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
    ``_deleted_ids_text`` writes as moto would."""
    if not (isinstance(result, dict) and set(result) == {"imageIds", "failures"}):
        return False
    # A failure that names no image (MissingDigestAndTag): ids that are digests never
    # cause one.
    if not all(isinstance(f, dict) and f.get("imageId") for f in result["failures"]):
        return False
    ids = result["imageIds"] + [f["imageId"] for f in result["failures"]]
    fields = [(i, _ID_MEMBERS) for i in ids] + [(f, _FAILURE_MEMBERS) for f in result["failures"]]
    return all(isinstance(d, dict) and set(d) <= set(members)
               and all(isinstance(v, str) for k, v in d.items() if k != "imageId")
               for d, members in fields)


# What an imageDetail is made from, besides the size some tests set: immutable values, and
# the tags (a list, kept as a copy and compared by value).
_DETAIL_VALUES = operator.attrgetter("registry_id", "repository_name", "_image_digest", "image_pushed_at",
                                     "image_manifest_media_type", "image_manifest", "image_tags")


def _detail_fields(image: Any) -> tuple[tuple, Any]:
    """Everything a serialized imageDetail is made from: its values (the tags as a copy),
    and its size when set."""
    values = _DETAIL_VALUES(image)
    return values[:-1] + (list(values[-1]),), image.__dict__.get("emu_size")


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
    saved = [(image, list(image.image_tags), image.image_tag, image.image_pushed_at,
              image.__dict__.get("emu_size")) for image in backend_repo.images]

    def restore() -> None:
        for image, tags, tag, pushed_at, size in saved:
            image.image_tags = list(tags)
            image.image_tag = tag
            image.image_pushed_at = pushed_at
            if size is None:
                image.__dict__.pop("emu_size", None)
            else:
                image.emu_size = size
        backend_repo.images = TrackedImages(image for image, *_ in saved)

    client = emu.client(counted=False)
    repushed = days_ago(7)

    def ask() -> list[Any]:
        answers: list[Any] = []

        def call(name: str, **kwargs: Any) -> None:
            try:
                out = getattr(client, name)(**kwargs)
                out.pop("ResponseMetadata", None)
                answers.append((name, kwargs, out))
            except client.exceptions.ClientError as e:
                answers.append((name, kwargs, e.response["Error"]))
            if name == "batch_delete_image":
                answers.append(("left", None, left()))

        def left() -> list[Any]:
            return sorted((d, sorted(t)) for d, t in emu.snapshot()[repo].items())

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
        # Fields an imageDetail is made from, changed: kept texts must not be answered.
        emu.set_pushed_at(repo, bulk[5], repushed)
        emu.set_size(repo, bulk[6], 12345)
        call("describe_images", repositoryName=repo, maxResults=1000)
        call("describe_images", repositoryName=repo, maxResults=1001)
        call("describe_images", repositoryName=repo, nextToken="bm90IGEgdG9rZW4")
        call("describe_images", repositoryName=repo, maxResults=5,
             nextToken=ecr_emulator._encode_token(f"images:{repo}:ANY", bulk[7]))
        call("describe_images", repositoryName=repo, maxResults=5,
             nextToken=ecr_emulator._encode_token(f"images:{repo}:TAGGED", bulk[7]))
        for status in ("TAGGED", "UNTAGGED"):
            call("describe_images", repositoryName=repo, maxResults=1000, filter={"tagStatus": status})
        ids = [{"imageDigest": d} for d in bulk[:5] + [plain, index.digest, referrer, bulk[1]]]
        call("describe_images", repositoryName=repo, imageIds=ids)
        call("describe_images", repositoryName=repo, imageIds=ids[:3], filter={"tagStatus": "ANY"})
        call("describe_images", repositoryName=repo, imageIds=ids[:2], filter={"tagStatus": "TAGGED"})
        call("describe_images", repositoryName=repo, maxResults=3, filter={"tagStatus": "ANY"})
        call("describe_images", repositoryName=repo, imageIds=[{"imageDigest": bulk[2], "imageTag": "v1"}])
        call("describe_images", repositoryName=repo, imageIds=[{"imageDigest": bulk[2], "imageTag": "v2"}])
        # A digest alone beside a digest with a tag it does not hold: the call fails.
        call("describe_images", repositoryName=repo,
             imageIds=[{"imageDigest": bulk[0]}, {"imageDigest": bulk[2], "imageTag": "v2"}])
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
        # Images moved by the deletions above; then an index's children, free once it is gone.
        call("batch_delete_image", repositoryName=repo,
             imageIds=[{"imageDigest": d} for d in (index.digest, referrer, plain, bulk[0])])
        call("batch_delete_image", repositoryName=repo, imageIds=[{"imageDigest": d} for d in index.children])
        again = client.describe_images(repositoryName=repo, maxResults=1000)
        again.pop("ResponseMetadata", None)
        answers.append(("after", None, again))
        return answers

    try:
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
        set_enabled(False)
        emu.reset()
    for name, answers in (("speed-ups", with_speedups), ("cached answers", cached)):
        if answers != without:
            for a, b in zip(without, answers):
                if a != b:
                    raise AssertionError(f"emulator {name} answer differently:\n  without: {str(a)[:1500]}"
                                         f"\n  with:    {str(b)[:1500]}")
            raise AssertionError(f"emulator {name} answer differently")
