"""WSGI entry point (``gunicorn erp.wsgi``, ``manage.py runserver``): monitoring, then Django."""

import os

from django.core.wsgi import get_wsgi_application

from erp.monitoring import start_monitoring

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erp.settings")
# Before the application: its middleware traces through the provider configured here.
pipeline = start_monitoring()
application = get_wsgi_application()
