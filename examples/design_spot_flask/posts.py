"""Posts: create, publish and discard; the business operations the seed timed by hand.

``@tag_business_operation('post_creation')`` + ``@monitor_performance('post_creation',
threshold_ms=2000)`` became ``@post.operation("post_creation", threshold_ms=2000)`` on the
``post`` module; a run over the threshold is a ``slow_operation`` issue of its own. An error
inside is reported once, with the request's ``user_type`` on the failing span: the
fingerprint rules (``fingerprints.toml``) make one issue per operation and user type.
"""

from __future__ import annotations

import logging
import time
from functools import wraps
from typing import Any, Callable, Optional

from flask import Blueprint, current_app, g, jsonify, request
from onboarding import finish_journey, journey_step, reached
from store import Store, User

import otel_sentry_biz as biz

log = logging.getLogger("design_spot.posts")
posts = Blueprint("posts", __name__)
post = biz.module("post")

#: Seconds our (simulated) media pipeline takes per kind; a video is over its threshold.
PROCESSING_SECONDS = {"image": 0.02, "video": 0.3}
MEDIA_KINDS = {".jpg": "image", ".png": "image", ".mp4": "video"}


class ValidationError(ValueError):
    """The post as submitted cannot be saved."""


class MediaError(Exception):
    """The media pipeline could not process an upload."""


class NotAuthor(PermissionError):
    """Only a post's author may publish it."""


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            return jsonify(error="sign in first"), 401
        return view(*args, **kwargs)

    return guarded


@posts.post("/posts")
@biz.api_endpoint("create_post")
@login_required
def create_post():
    form = request.form
    store = _store()
    try:
        post_id, kind = create(
            store, g.user, form.get("title", ""), form.get("body", ""), form.get("media")
        )
    except ValidationError as exc:
        return jsonify(error=str(exc)), 400
    if store.post_count(g.user.id) == 1:
        reached("first_post")
        journey_step("first_post")
    biz.feature_used("post_creator", usage=kind)
    return jsonify(post_id=post_id), 201


@posts.post("/posts/<int:post_id>/publish")
@biz.api_endpoint("publish_post")
@login_required
def publish(post_id: int):
    try:
        publish_post(_store(), g.user, post_id)
    except NotAuthor:
        return jsonify(error="only the author may publish this post"), 403
    reached("publish")
    response = jsonify(published=post_id)
    finish_journey(response)
    return response


@posts.post("/posts/<int:post_id>/discard")
@biz.api_endpoint("discard_post")
@login_required
def discard(post_id: int):
    _store().set_status(post_id, "discarded")
    response = jsonify(discarded=post_id)
    finish_journey(response, abandoned="draft_discarded")
    return response


@posts.errorhandler(MediaError)
def media_failed(exc: MediaError):
    # Already recorded by @biz.api_endpoint; handled here so Flask answers JSON, not HTML.
    return jsonify(error="we could not process your upload"), 500


@post.operation("post_creation", threshold_ms=2000)
def create(
    store: Store, author: User, title: str, body: str, media: Optional[str]
) -> tuple[int, str]:
    """Save a draft; the kind of post (text, image, video) for the feature-usage count."""
    if not title.strip():
        raise ValidationError("a post needs a title")
    kind = process_media(media) if media else "text"
    post_id = store.add_post(author.id, title, body, media)
    log.info("post %s created by user %s (%s)", post_id, author.id, kind)
    return post_id, kind


# HIGH: an upload we cannot read loses the user's work (the default would rank it LOW).
@post.operation("process_media", threshold_ms=250, impact="HIGH")
def process_media(media: str) -> str:
    kind = next((k for suffix, k in MEDIA_KINDS.items() if media.lower().endswith(suffix)), None)
    if kind is None:
        raise MediaError(f"unsupported media file {media!r}: use {', '.join(MEDIA_KINDS)}")
    time.sleep(PROCESSING_SECONDS[kind])  # stands in for resizing or transcoding
    return kind


# Outermost: a refusal becomes a permission_denied security event beside the operation's
# span; the operation expects it (it is an answer, not a failure of the operation).
@biz.security_monitor(permission_errors=(NotAuthor,), area="posts")
@post.operation("publish", expected=(NotAuthor,))
def publish_post(store: Store, user: User, post_id: int) -> None:
    found = store.post(post_id)
    if found is None or found.author_id != user.id:
        raise NotAuthor(f"user {user.id} is not the author of post {post_id}")
    store.set_status(post_id, "published")
    log.info("post %s published", post_id)


def _store() -> Store:
    return current_app.extensions["store"]
