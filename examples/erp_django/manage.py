#!/usr/bin/env python
"""The ERP's Django command line: ``demo``, ``sentry_test`` and Django's own commands.

python examples/erp_django/manage.py demo                 # a scripted session, a report
python examples/erp_django/manage.py sentry_test --all    # one test event of each kind
"""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erp.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
