"""The Flask app: pages, blueprints, the request hooks and the HTTP instrumentation."""

from __future__ import annotations

import secrets
from pathlib import Path

import middleware
from accounts import accounts
from flask import Flask, g, jsonify, request
from onboarding import reached
from posts import posts
from store import Store
from werkzeug.middleware.proxy_fix import ProxyFix

import otel_sentry_biz as biz
from otel_sentry_biz_instrumentors.http import instrument_flask_app


def create_app(database: Path) -> Flask:
    """The site, its data in the SQLite file ``database``."""
    app = Flask("design_spot")
    app.secret_key = secrets.token_hex(16)
    app.extensions["store"] = Store(database)
    app.register_blueprint(accounts)
    app.register_blueprint(posts)
    app.add_url_rule("/", view_func=home)
    app.add_url_rule("/search", view_func=search)
    middleware.install(app)
    # One transaction per request, named by route (POST /posts/<int:post_id>/publish), with
    # the signed-in user; replaces the seed's request-tracking middleware.
    instrument_flask_app(app, user_from_request=middleware.user_of)
    # Outermost, as at the edge: behind one proxy, request.remote_addr is the client's
    # address from X-Forwarded-For (what the security rules group by).
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)
    return app


def home():
    reached("visit")
    return jsonify(site="design spot", signed_in=g.user is not None)


@biz.api_endpoint("search")
def search():
    biz.feature_used("search")
    return jsonify(query=request.args.get("q", ""), results=[])
