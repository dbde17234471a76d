"""Django settings of the ERP example.

Monitoring is two settings here and one line in ``MIDDLEWARE``; ``SENTRY_DSN``,
``SENTRY_ENVIRONMENT``, ``SENTRY_RELEASE`` and every other ``SENTRY_*`` /
``OTEL_SENTRY_BIZ_*`` variable are read from the environment by ``biz.configure()``.
"""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# An example's key: a real deployment reads its own from the environment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "erp-example-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "erp",
]

MIDDLEWARE = [
    # First, so the request's span covers every other middleware and sees the view's error.
    "otel_sentry_biz_instrumentors.http.django.BizDjangoMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # A JSON API for scripts and the demo client; an ERP with HTML forms keeps
    # CsrfViewMiddleware here.
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "erp.urls"
WSGI_APPLICATION = "erp.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "ERP_DATABASE", os.path.join(tempfile.gettempdir(), "context7-erp-example.sqlite3")
        ),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# -- monitoring ---------------------------------------------------------------------------

#: Keyword arguments of ``biz.configure()`` (see erp/monitoring.py): the release is
#: service.name@service.version, context7-erp@2.2.0; 10% of the healthy requests are traced
#: (every failed one is kept).
OTEL_SENTRY_BIZ = {
    "resource": {"service.name": "context7-erp", "service.version": "2.2.0"},
    "traces_sample_rate": 0.1,
}
#: Who the request's user is, for the request's span (the middleware calls it).
OTEL_SENTRY_BIZ_USER_FROM_REQUEST = "erp.monitoring.user_of"
