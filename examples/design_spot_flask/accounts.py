"""Accounts: sign-up and sign-in, with failed sign-ins as security events.

The seed's ``account/views.py`` captured a failed login by hand (tags, user, a Sentry
message per attempt). Here each failed attempt is one ``auth_failure`` security event (a
span the rules count, a breadcrumb of the request), and the shipped ``security`` rule set
decides when attempts become an incident: more than 5 for one user within 5 minutes is one
HIGH issue. The attempted password never leaves the view.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request, session
from onboarding import journey_step, reached, start_journey
from store import DuplicateUser, Store, User
from werkzeug.security import check_password_hash, generate_password_hash

import otel_sentry_biz as biz

log = logging.getLogger("design_spot.accounts")
accounts = Blueprint("accounts", __name__)
account = biz.module("account")

USER_TYPES = ("customer", "creator")


class LoginRefused(Exception):
    """Wrong username or password; ``reason`` says which, for the security event only.

    A short code, never words like "password": values mentioning one are scrubbed as
    secrets (Relay's rule), which would hide the reason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@accounts.post("/signup")
@biz.api_endpoint("signup")
def signup():
    form = request.form
    user_type = form.get("user_type", "customer")
    if user_type not in USER_TYPES:
        return jsonify(error=f"user_type must be one of {', '.join(USER_TYPES)}"), 400
    try:
        user_id = register(_store(), form["username"], form["email"], form["password"], user_type)
    except DuplicateUser as exc:
        return jsonify(error=str(exc)), 409
    reached("signup")
    response = jsonify(user_id=user_id)
    response.status_code = 201
    start_journey(response, user_id, user_type=user_type)
    return response


@accounts.post("/login")
@biz.api_endpoint("login")
def login():
    username = request.form.get("username", "")
    try:
        user = authenticate(_store(), username, request.form.get("password", ""))
    except LoginRefused as refused:
        biz.security_event(
            "auth_failure", user=username, ip=request.remote_addr, reason=refused.reason
        )
        return jsonify(error="wrong username or password"), 401
    session["user_id"] = user.id
    journey_step("logged_in")
    return jsonify(user_id=user.id)


@accounts.post("/logout")
def logout():
    session.clear()
    return jsonify(signed_out=True)


@account.operation("registration", threshold_ms=2000)
def register(store: Store, username: str, email: str, password: str, user_type: str) -> int:
    user_id = store.add_user(username, email, generate_password_hash(password), user_type)
    log.info("user %s signed up as a %s", user_id, user_type)
    return user_id


@account.operation("authentication", expected=(LoginRefused,))
def authenticate(store: Store, username: str, password: str) -> User:
    user = store.user_named(username)
    if user is None:
        raise LoginRefused("unknown_user")
    if not check_password_hash(user.password_hash, password):
        raise LoginRefused("mismatch")
    return user


def _store() -> Store:
    return current_app.extensions["store"]
