"""Media under races and faults, against FerretDB and the emulator's S3: a medium goes to one
post only however many claim it at once; an event processed twice at once keeps one set of
variants; a bucket fault leaves the record as it was (the event or job is delivered again),
never a ready medium without objects or a removed one with them. And a model-based test: any
sequence of uploads, attaches, releases, deletes and clean-ups keeps the records and the bucket
in step with a plain model."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from feed_adapters.images.pillow_renderer import PillowRenderer
from feed_adapters.mongo.media_store import MongoMediaStore
from feed_adapters.s3.media_objects import S3MediaObjects
from feed_adapters.s3.upload_signer import S3UploadSigner
from feed_wiring.settings import Settings
from infra.deploy import aws
from newsfeed.errors import Conflict, MediaBucketUnavailable
from newsfeed.ids import IdGenerator
from newsfeed.media.processing import ImageLimits, MediaProcessor
from newsfeed.media.service import STALE_CLAIM, MediaService
from newsfeed.model import Post
from newsfeed.telemetry import MEDIA_UPLOADS
from tests import media_samples as samples
from tests.fakes.telemetry import RecordingTelemetry

pytestmark = pytest.mark.integration

LIMITS = ImageLimits(max_pixels=4_000_000, max_frames=50, max_animation_pixels=10_000_000)
# Nothing listens here (below 32768, unused by the stack): a bucket that does not answer.
DEAD_ENDPOINT = "http://127.0.0.1:29431"


@dataclass
class Media:
    """The services of the media function and the posts function on one bucket, with a clock
    the test moves."""

    settings: Settings
    bucket: str
    store: MongoMediaStore
    objects: S3MediaObjects
    service: MediaService
    processor: MediaProcessor
    s3: Any
    now: list[datetime]

    def upload(self, owner: int, data: bytes, declared: str = "image/png") -> int:
        record, _ = self.service.create_upload(owner, declared, len(data))
        self.s3.put_object(Bucket=self.bucket, Key=record.key, Body=data, ContentType=declared)
        return record.id

    def keys(self, prefix: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def processor_on(
        self, objects: S3MediaObjects, telemetry: RecordingTelemetry | None = None
    ) -> MediaProcessor:
        return MediaProcessor(
            self.store,
            objects,
            PillowRenderer(),
            max_bytes=1_000_000,
            limits=LIMITS,
            telemetry=telemetry or RecordingTelemetry(),
        )

    def service_on(
        self, objects: S3MediaObjects, post_exists: Callable[[int], bool] | None = None
    ) -> MediaService:
        return MediaService(
            self.store,
            S3UploadSigner(self.bucket, endpoint_url=self.settings.aws_endpoint_url),
            IdGenerator(),
            max_bytes=1_000_000,
            upload_seconds=60,
            objects=objects,
            cdn_base="https://cdn.test",
            post_exists=post_exists,
            clock=lambda: self.now[0],
        )


@pytest.fixture(scope="module")
def media(settings: Settings, mongo_db: Any) -> Iterator[Media]:
    s3 = aws(settings, "s3")
    bucket = f"feed-test-media-life-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    objects = S3MediaObjects(bucket, endpoint_url=settings.aws_endpoint_url)
    store = MongoMediaStore(mongo_db)
    now = [datetime.now(UTC)]
    made = Media(settings, bucket, store, objects, None, None, s3, now)  # type: ignore[arg-type]
    made.service = made.service_on(objects)
    made.processor = made.processor_on(objects)
    yield made
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
    s3.delete_bucket(Bucket=bucket)


def owner() -> int:
    return IdGenerator().next_id()


@pytest.mark.parametrize("round_", range(5))
def test_one_medium_goes_to_one_post_however_many_claim_it_at_once(
    media: Media, round_: int
) -> None:
    # Rounds: on FerretDB a conditional update lets two writers both win most of the time,
    # so a store built on one fails here within a round or two.
    alice = owner()
    medium = media.upload(alice, samples.png_bytes())
    assert media.processor.process_upload(f"uploads/{alice}/{medium}") == "ready"
    posts = [IdGenerator().next_id() for _ in range(8)]
    won: list[int] = []
    lost: list[int] = []
    start = threading.Barrier(len(posts))

    def claim(post_id: int) -> None:
        start.wait()
        try:
            media.service.attach(alice, [medium], post_id)
            won.append(post_id)
        except Conflict:
            lost.append(post_id)

    threads = [threading.Thread(target=claim, args=(p,)) for p in posts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7
    assert media.store.get_media(medium).post_id == won[0]


@pytest.mark.parametrize("round_", range(3))
def test_an_event_processed_twice_at_once_keeps_one_set_of_variants(
    media: Media, round_: int
) -> None:
    alice = owner()
    medium = media.upload(alice, samples.jpeg_with_location(800, 400), "image/jpeg")
    key = f"uploads/{alice}/{medium}"
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        start.wait()
        outcomes.append(media.processor.process_upload(key))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ignored", "ready"]
    record = media.store.get_media(medium)
    assert media.keys(f"media/{medium}/") == sorted(v.key for v in record.variants)
    assert media.keys(key) == []


def test_the_cleanup_and_a_late_processing_never_both_settle_an_upload(media: Media) -> None:
    """The cleanup removes a day-old pending medium while its (very late) event is processed:
    one of them settles it; the loser's objects are not left behind."""
    alice = owner()
    medium = media.upload(alice, samples.png_bytes())
    start = threading.Barrier(2)
    results: dict[str, object] = {}
    aged = media.service_on(media.objects)
    media.now[0] = datetime.now(UTC) + timedelta(days=2)

    def clean() -> None:
        start.wait()
        results["removed"] = aged.remove_unattached()

    def process() -> None:
        start.wait()
        results["outcome"] = media.processor.process_upload(f"uploads/{alice}/{medium}")

    threads = [threading.Thread(target=clean), threading.Thread(target=process)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    media.now[0] = datetime.now(UTC)
    record = media.store.get_media(medium)
    # Processed first, it may still be removed after (it is a day old and on no post); the
    # cleanup first, processing's variants are deleted. Either way records and objects agree.
    assert results["outcome"] in ("ready", "ignored")
    if record.state == "ready":
        assert results["outcome"] == "ready"
        assert media.keys(f"media/{medium}/") == sorted(v.key for v in record.variants)
    else:
        assert record.state == "removed" and record.purged_at is not None
        assert media.keys(f"media/{medium}/") == []
    assert media.keys(f"uploads/{alice}/{medium}") == []


def test_a_bucket_fault_while_processing_leaves_it_pending_for_the_retry(media: Media) -> None:
    alice = owner()
    medium = media.upload(alice, samples.png_bytes())
    key = f"uploads/{alice}/{medium}"
    measured = RecordingTelemetry()
    broken = media.processor_on(
        S3MediaObjects(media.bucket, endpoint_url=DEAD_ENDPOINT, timeout_seconds=0.3), measured
    )
    with pytest.raises(MediaBucketUnavailable):
        broken.process_upload(key)
    assert media.store.get_media(medium).state == "pending"
    healthy = media.processor_on(media.objects, measured)
    assert healthy.process_upload(key) == "ready"  # the event, delivered again
    assert healthy.process_upload(key) == "ignored"
    counted = [m.labels["outcome"] for m in measured.of(MEDIA_UPLOADS)]
    assert counted == ["error", "ready", "ignored"]


def test_a_bucket_fault_while_removing_leaves_the_removal_to_finish(media: Media) -> None:
    alice = owner()
    medium = media.upload(alice, samples.png_bytes())
    media.processor.process_upload(f"uploads/{alice}/{medium}")
    post_id = IdGenerator().next_id()
    items = media.service.attach(alice, [medium], post_id)
    post = Post(post_id, alice, "x", items, datetime.now(UTC), deleted_at=datetime.now(UTC))
    broken = media.service_on(
        S3MediaObjects(media.bucket, endpoint_url=DEAD_ENDPOINT, timeout_seconds=0.3)
    )
    with pytest.raises(MediaBucketUnavailable):
        broken.remove_post_media(post)  # the retract job fails: SQS delivers it again
    record = media.store.get_media(medium)
    assert record.state == "removed" and record.purged_at is None
    assert len(media.keys(f"media/{medium}/")) == 2
    # Not attachable meanwhile, and the retry (or the next cleanup run) finishes it.
    with pytest.raises(Conflict, match="removed"):
        media.service.attach(alice, [medium], IdGenerator().next_id())
    assert media.service.remove_post_media(post) == 1
    assert media.keys(f"media/{medium}/") == []
    assert media.store.get_media(medium).purged_at is not None


# -- model-based ---------------------------------------------------------------------------


@dataclass
class Modelled:
    owner: int
    state: str  # ready | failed | pending | removed
    post: int | None = None
    created: datetime | None = None


class MediaLifecycle(RuleBasedStateMachine):
    """Random uploads (good or bad), attaches (own or another's, fresh or taken) by posts that
    are stored or whose insert failed, releases, post deletes, and clean-ups later, against a
    plain dict; after every step each record and its objects agree with the model."""

    env: Media

    def __init__(self) -> None:
        super().__init__()
        self.owners = [owner(), owner()]
        self.model: dict[int, Modelled] = {}
        # post -> (author, media): stored posts (claims confirmed), and posts never stored
        # (their claims left unconfirmed).
        self.posts: dict[int, tuple[int, tuple[Any, ...]]] = {}
        self.lost: dict[int, tuple[int, tuple[Any, ...]]] = {}
        self.env.now[0] = datetime.now(UTC)
        self.service = self.env.service_on(self.env.objects, lambda pid: pid in self.posts)

    # Mostly processed images, so that attaches have something to take.
    @rule(
        who=st.integers(0, 1),
        kind=st.sampled_from(["ready", "ready", "ready", "failed", "pending"]),
    )
    def upload(self, who: int, kind: str) -> None:
        alice = self.owners[who]
        data = samples.TEXT if kind == "failed" else samples.png_bytes(40, 30)
        medium = self.env.upload(alice, data)
        if kind != "pending":
            assert self.env.processor.process_upload(f"uploads/{alice}/{medium}") == kind
        self.model[medium] = Modelled(alice, kind, created=self.env.now[0])

    @rule(
        who=st.integers(0, 1),
        picks=st.lists(st.integers(0, 50), min_size=1, max_size=3),
        own=st.booleans(),
        stored=st.booleans(),
    )
    def attach(self, who: int, picks: list[int], own: bool, stored: bool) -> None:
        alice, post_id = self.owners[who], IdGenerator().next_id()
        # Half the time among the caller's own media (else anyone's).
        pool = sorted(m for m, mod in self.model.items() if mod.owner == alice or not own)
        if not pool:
            return
        ids = list(dict.fromkeys(pool[p % len(pool)] for p in picks))
        ok = all(
            self.model[m].owner == alice
            and self.model[m].state == "ready"
            and self.model[m].post is None
            for m in ids
        )
        try:
            items = self.service.attach(alice, ids, post_id)
        except Exception as exc:
            assert not ok, f"attach refused: {exc!r}"
            return
        assert ok, "attach took what the model refuses"
        assert [m.id for m in items] == ids
        for m in ids:
            self.model[m].post = post_id
        if stored:  # as PostService does once the insert succeeded
            self.service.confirm(ids, post_id)
            self.posts[post_id] = (alice, items)
        else:
            self.lost[post_id] = (alice, items)

    @rule(pick=st.integers(0, 50), of_lost=st.booleans())
    def release(self, pick: int, of_lost: bool) -> None:
        """Let go of a post's claims: a post never stored loses them; a stored one keeps them
        (a confirmed claim is never let go)."""
        posts = self.lost if of_lost else self.posts
        if not posts:
            return
        post_id = sorted(posts)[pick % len(posts)]
        _, items = posts[post_id]
        self.service.release([m.id for m in items], post_id)
        if of_lost:
            del self.lost[post_id]
            for m in items:
                self.model[m.id].post = None

    @rule(pick=st.integers(0, 50))
    def delete_post(self, pick: int) -> None:
        if not self.posts:
            return
        post_id = sorted(self.posts)[pick % len(self.posts)]
        author, items = self.posts.pop(post_id)
        now = self.env.now[0]
        post = Post(post_id, author, "x", items, now, deleted_at=now)
        assert self.service.remove_post_media(post) == len(items)
        for m in items:
            self.model[m.id].state = "removed"

    @rule()
    def settle_after_a_while(self) -> None:
        self.env.now[0] += STALE_CLAIM + timedelta(minutes=1)
        self.service.settle_claims()
        self._settled()

    @rule()
    def a_day_later_cleanup(self) -> None:
        self.env.now[0] += timedelta(days=1, minutes=1)
        self.service.settle_claims()  # what the cleanup job runs first
        self._settled()
        self.service.remove_unattached(limit=10_000)
        for modelled in self.model.values():
            if modelled.post is None:
                modelled.state = "removed"

    def _settled(self) -> None:
        for _, items in self.lost.values():
            for m in items:
                self.model[m.id].post = None
        self.lost.clear()

    @invariant()
    def records_and_objects_agree(self) -> None:
        for medium, modelled in self.model.items():
            record = self.env.store.get_media(medium)
            assert record is not None
            assert (record.state, record.post_id) == (modelled.state, modelled.post), medium
            variants = self.env.keys(f"media/{medium}/")
            upload = self.env.keys(f"uploads/{modelled.owner}/{medium}")
            if modelled.state == "ready":
                assert variants == sorted(v.key for v in record.variants) and len(variants) == 2
            else:
                assert variants == []
            assert upload == (
                [f"uploads/{modelled.owner}/{medium}"] if modelled.state == "pending" else []
            )


def test_media_lifecycle_matches_the_model(media: Media, mongo_db: Any) -> None:
    # Other tests' media must not be cleaned up by this one's clock: a collection of its own.
    store = MongoMediaStore(mongo_db.client[mongo_db.name + "_media_model"])
    store._media.delete_many({})
    env = Media(media.settings, media.bucket, store, media.objects, None, None, media.s3, media.now)  # type: ignore[arg-type]
    env.service = env.service_on(env.objects)
    env.processor = env.processor_on(env.objects)
    MediaLifecycle.env = env
    machine = MediaLifecycle.TestCase
    machine.settings = settings(
        max_examples=40,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine().runTest()
