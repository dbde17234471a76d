"""The demo's scripted working day: two employees on the ERP over real HTTP.

A real WSGI server (the standard library's, in a thread) serves the Django application on
127.0.0.1; each employee is an HTTP client with its own session cookie.
"""

from __future__ import annotations

import http.cookiejar
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any, Callable, Optional
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

#: Who works today: username -> (user id, password, full name, quality inspector?).
EMPLOYEES = {
    "ana": (101, "ana-demo-password", ("Ana", "Lopez"), True),
    "ben": (102, "ben-demo-password", ("Ben", "Okafor"), False),
}
#: sku -> (name, stock): the warehouse at the start of the day.
PRODUCTS = {"PUMP-100": ("Centrifugal pump", 40), "VALVE-200": ("Gate valve", 12)}


@dataclass(frozen=True)
class Step:
    """One request of the session and what it is meant to show.

    ``path`` may name a value an earlier answer gave: ``/sales/orders/{order}/``.
    """

    user: str
    method: str
    path: str
    shows: str
    body: Optional[dict[str, Any]] = None


SESSION = [
    Step("ana", "POST", "/sales/orders/", "an order",
         {"customer": "ACME", "sku": "PUMP-100", "quantity": 2}),
    Step("ana", "POST", "/sales/orders/", "not enough stock: a business error",
         {"customer": "Globex", "sku": "VALVE-200", "quantity": 500}),
    Step("ana", "GET", "/sales/orders/{order}/", "the order read back"),
    Step("ana", "GET", "/sales/orders/999/", "no such order: 404, not an error"),
    Step("ben", "POST", "/inventory/adjustments/", "a stock correction",
         {"sku": "PUMP-100", "delta": 10, "reason": "cycle count"}),
    Step("ben", "POST", "/production/runs/", "a small run",
         {"sku": "PUMP-100", "quantity": 20}),
    Step("ben", "POST", "/production/runs/", "a large run, planned past 250 ms: slow",
         {"sku": "PUMP-100", "quantity": 400}),
    Step("ben", "POST", "/quality/checks/", "not an inspector: 403, not an error",
         {"sku": "PUMP-100", "measurements": [10.0]}),
    Step("ana", "POST", "/quality/checks/", "a passed check",
         {"sku": "PUMP-100", "measurements": [9.9, 10.1]}),
    Step("ana", "POST", "/quality/checks/", "no specification on file: a 500 error",
         {"sku": "VALVE-200", "measurements": [4.2]}),
]  # fmt: skip


def seed() -> None:
    """The day's employees and stock, the same on every run."""
    from django.contrib.auth.models import User

    from erp.models import Product, SalesOrder

    SalesOrder.objects.all().delete()
    Product.objects.all().delete()
    for sku, (name, stock) in PRODUCTS.items():
        Product.objects.create(sku=sku, name=name, stock=stock)
    User.objects.filter(username__in=EMPLOYEES).delete()
    for username, (user_id, password, (first, last), inspector) in EMPLOYEES.items():
        User.objects.create_user(
            username,
            f"{username}@context7-erp.example",
            password,
            id=user_id,
            first_name=first,
            last_name=last,
            is_staff=inspector,
        )


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass  # the report says what happened


@contextmanager
def serve(application: Callable[..., Any]) -> Iterator[str]:
    """Serve ``application`` on a free port of 127.0.0.1; its base URL."""
    server = make_server("127.0.0.1", 0, application, _ThreadingServer, handler_class=_Quiet)
    # Polled often, so the demo does not wait half a second for the server to stop.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Employee:
    """An HTTP client logged in as one employee (a session cookie)."""

    def __init__(self, base_url: str, username: str) -> None:
        self._base_url = base_url
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        password = EMPLOYEES[username][1]
        form = urllib.parse.urlencode({"username": username, "password": password}).encode()
        status, _ = self.request("POST", "/login/", form, "application/x-www-form-urlencoded")
        if status != 204:
            raise RuntimeError(f"{username} could not log in: HTTP {status}")

    def request(
        self, method: str, path: str, body: Optional[bytes], content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """Send one request; its status and decoded JSON answer (None when it has none)."""
        request = urllib.request.Request(self._base_url + path, data=body, method=method)
        if body is not None:
            request.add_header("Content-Type", content_type)
        try:
            with self._opener.open(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as answer:  # 4xx/5xx are answers here, not failures
            status, raw = answer.code, answer.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None  # Django's plain 404/403/500 pages


def run_session(base_url: str) -> list[tuple[Step, str, int]]:
    """Play :data:`SESSION` against ``base_url``; each step with its path and answer status."""
    employees = {name: Employee(base_url, name) for name in EMPLOYEES}
    answers: dict[str, Any] = {}
    results = []
    for step in SESSION:
        path = step.path.format(**answers)
        body = json.dumps(step.body).encode() if step.body is not None else None
        status, answer = employees[step.user].request(step.method, path, body)
        if isinstance(answer, dict):
            answers.update(answer)
        results.append((step, path, status))
    return results
