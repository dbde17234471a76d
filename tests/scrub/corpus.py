"""A corpus of Sentry events seeded with secrets, for comparing scrubbers.

Each :class:`Case` is one event shaped like :mod:`otel_sentry_biz.sentry.events` builds them,
with secrets planted in one field (message, exception value, breadcrumb, URL, query string,
header, cookie, tag, extra, context, span data, span description, SQL, frame variable, user)
and, where useful, *decoys*: look-alikes that are not secrets (a 16-digit order id failing
Luhn, an IBAN-shaped code failing mod 97, token counters) and should survive.

Cases marked ``gap`` hold a secret that no key or pattern can recognise (a bare token in a
URL path); they are kept so the report shows what neither scrubber catches.
"""

from __future__ import annotations

import copy
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

from sentry_relay import StoreNormalizer, convert_datascrubbing_config, pii_strip_event

#: Sentry's server-side defaults for a new project: "Data Scrubber" and "Use Default
#: Scrubbers" on, no extra or safe fields, IP addresses kept.
SENTRY_DEFAULT_DATASCRUBBING = {
    "scrubData": True,
    "scrubDefaults": True,
    "sensitiveFields": [],
    "excludeFields": [],
    "scrubIpAddresses": False,
}
_RELAY_PII_CONFIG = convert_datascrubbing_config(SENTRY_DEFAULT_DATASCRUBBING)
_normalizer = StoreNormalizer()


def relay_defaults(event: dict[str, Any]) -> dict[str, Any]:
    """What Sentry stores: Relay's normalization, then its default PII config."""
    return pii_strip_event(_RELAY_PII_CONFIG, _normalizer.normalize_event(copy.deepcopy(event)))


@dataclass(frozen=True)
class Case:
    name: str
    field: str
    event: dict[str, Any]
    secrets: tuple[str, ...]
    decoys: tuple[str, ...] = ()
    gap: bool = False


def strings_in(value: Any) -> Iterator[str]:
    """Every key and scalar of a structure, as text."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)
    elif value is not None:
        yield str(value)


def surviving(planted: tuple[str, ...], event: dict[str, Any]) -> list[str]:
    """The planted strings still present anywhere in ``event``."""
    texts = [t for t in strings_in(event) if t]
    return [s for s in planted if any(s in t for t in texts)]


# -- secret material --------------------------------------------------------------------------

_rng = random.Random(20240601)


def _token(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(length))


def _luhn(partial: str) -> str:
    """``partial`` completed with its Luhn check digit."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return partial + str((10 - total % 10) % 10)


def _not_luhn(partial: str) -> str:
    valid = _luhn(partial)
    return valid[:-1] + str((int(valid[-1]) + 1) % 10)


def _iban(country: str, bban: str) -> str:
    number = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(number) % 97:02d}{bban}"


def _spaced(text: str, every: int = 4) -> str:
    return " ".join(text[i : i + every] for i in range(0, len(text), every))


# -- base events ------------------------------------------------------------------------------

_SDK = {"name": "otel-sentry-biz", "version": "0.1.0"}
_ids = random.Random(7)


def _hex(n: int) -> str:
    return "".join(_ids.choice("0123456789abcdef") for _ in range(n))


def _trace() -> dict[str, Any]:
    return {
        "trace_id": _hex(32),
        "span_id": _hex(16),
        "op": "http.server",
        "status": "ok",
        "origin": "auto.otel.otel_sentry_biz",
        "type": "trace",
    }


def error_event() -> dict[str, Any]:
    return {
        "event_id": _hex(32),
        "platform": "python",
        "timestamp": 1717243200.5,
        "sdk": dict(_SDK),
        "environment": "production",
        "release": "billing@1.4.2",
        "server_name": "web-1",
        "level": "error",
        "transaction": "POST /checkout",
        "tags": {"business_impact": "HIGH", "error_category": "business_logic", "customer": "ACME"},
        "contexts": {"trace": _trace(), "runtime": {"name": "CPython", "version": "3.11.7"}},
        "exception": {
            "values": [
                {
                    "type": "PaymentDeclined",
                    "value": "card declined",
                    "module": "billing.payments",
                    "mechanism": {"type": "otel", "handled": False},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "billing/payments.py",
                                "abs_path": "/srv/app/billing/payments.py",
                                "function": "charge",
                                "module": "billing.payments",
                                "lineno": 42,
                                "in_app": True,
                            }
                        ]
                    },
                }
            ]
        },
    }


def transaction_event() -> dict[str, Any]:
    trace = _trace()
    start = 1717243200.0

    def span(op: str, description: str, data: dict[str, Any], offset: float) -> dict[str, Any]:
        return {
            "trace_id": trace["trace_id"],
            "span_id": _hex(16),
            "parent_span_id": trace["span_id"],
            "op": op,
            "description": description,
            "start_timestamp": start + offset,
            "timestamp": start + offset + 0.01,
            "status": "ok",
            "origin": "auto.otel.otel_sentry_biz",
            "data": data,
        }

    return {
        "type": "transaction",
        "event_id": _hex(32),
        "platform": "python",
        "timestamp": start + 0.2,
        "start_timestamp": start,
        "sdk": dict(_SDK),
        "environment": "production",
        "release": "billing@1.4.2",
        "transaction": "POST /checkout",
        "transaction_info": {"source": "route"},
        "tags": {"customer": "ACME", "work_request": "WR-1001"},
        "contexts": {
            "trace": {**trace, "data": {"http.route": "/checkout", "url.path": "/checkout"}},
        },
        "spans": [
            span(
                "db",
                "SELECT * FROM orders WHERE id = $1",
                {
                    "db.system.name": "postgresql",
                    "db.query.text": "SELECT * FROM orders WHERE id = $1",
                },
                0.01,
            ),
            span(
                "http.client",
                "GET https://erp.internal/api/orders/7",
                {"http.request.method": "GET", "url.full": "https://erp.internal/api/orders/7"},
                0.05,
            ),
            span("biz.operation", "reserve stock", {"biz.order_id": "ORD-7"}, 0.1),
        ],
    }


# -- placements -------------------------------------------------------------------------------

Place = Callable[[dict[str, Any]], None]


def _error(place: Place) -> dict[str, Any]:
    event = error_event()
    place(event)
    return event


def _transaction(place: Place) -> dict[str, Any]:
    event = transaction_event()
    place(event)
    return event


def in_message(text: str) -> dict[str, Any]:
    return _error(lambda e: e.update(logentry={"formatted": text}))


def in_exception(text: str) -> dict[str, Any]:
    return _error(lambda e: e["exception"]["values"][0].update(value=text))


def in_breadcrumb(text: str, category: str = "log") -> dict[str, Any]:
    crumb = {"timestamp": 1717243200.1, "category": category, "message": text, "level": "info"}
    return _error(lambda e: e.update(breadcrumbs={"values": [crumb]}))


def in_breadcrumb_data(key: str, value: Any) -> dict[str, Any]:
    crumb = {"timestamp": 1717243200.1, "type": "http", "category": "http", "data": {key: value}}
    return _error(lambda e: e.update(breadcrumbs={"values": [crumb]}))


def in_request(**request: Any) -> dict[str, Any]:
    base = {"method": "POST", "url": "https://shop.example.com/checkout"}
    return _error(lambda e: e.update(request={**base, **request}))


def in_tag(key: str, value: str) -> dict[str, Any]:
    return _transaction(lambda e: e["tags"].update({key: value}))


def in_extra(key: str, value: Any) -> dict[str, Any]:
    return _error(lambda e: e.update(extra={key: value}))


def in_context(name: str, value: dict[str, Any]) -> dict[str, Any]:
    return _error(lambda e: e["contexts"].update({name: value}))


def in_span_data(key: str, value: Any) -> dict[str, Any]:
    return _transaction(lambda e: e["spans"][1]["data"].update({key: value}))


def in_span_description(op: str, description: str, data: dict[str, Any]) -> dict[str, Any]:
    def place(event: dict[str, Any]) -> None:
        event["spans"][0].update(op=op, description=description)
        event["spans"][0]["data"].update(data)

    return _transaction(place)


def in_trace_data(key: str, value: Any) -> dict[str, Any]:
    return _transaction(lambda e: e["contexts"]["trace"]["data"].update({key: value}))


def in_frame_vars(variables: dict[str, Any]) -> dict[str, Any]:
    def place(event: dict[str, Any]) -> None:
        event["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"] = variables

    return _error(place)


def in_user(user: dict[str, Any]) -> dict[str, Any]:
    return _error(lambda e: e.update(user=user))


def in_transaction_name(name: str) -> dict[str, Any]:
    return _transaction(lambda e: e.update(transaction=name))


# -- the corpus -------------------------------------------------------------------------------


@dataclass
class _Builder:
    cases: list[Case] = field(default_factory=list)

    def add(
        self,
        name: str,
        where: str,
        event: dict[str, Any],
        *secrets: str,
        decoys: tuple[str, ...] = (),
        gap: bool = False,
    ) -> None:
        self.cases.append(Case(name, where, event, tuple(secrets), decoys, gap))


def build_corpus() -> list[Case]:
    """The cases, deterministic (same secrets on every call)."""
    _rng.seed(20240601)
    _ids.seed(7)
    b = _Builder()

    # E-mail addresses
    b.add(
        "email in message",
        "message",
        in_message("payment failed for ana.silva@example.com"),
        "ana.silva@example.com",
    )
    b.add(
        "email in exception",
        "exception",
        in_exception("no account for j.doe+shop@corp.example.org"),
        "j.doe+shop@corp.example.org",
    )
    b.add(
        "email in tag",
        "tags",
        in_tag("customer_contact", "li.wei@example.net"),
        "li.wei@example.net",
    )
    b.add(
        "email in span data",
        "span data",
        in_span_data("biz.notify_to", "ops-team@example.co.uk"),
        "ops-team@example.co.uk",
    )
    b.add(
        "email in user",
        "user",
        in_user({"id": "u-17", "email": "maria.k@example.com"}),
        "maria.k@example.com",
    )
    b.add(
        "email in url path",
        "transaction",
        in_transaction_name("GET /users/tom.h@example.com/orders"),
        "tom.h@example.com",
    )

    # Payment cards (Luhn-valid), with a Luhn-failing decoy id
    visa, mc, amex, mc2 = (
        _luhn("411111111111111"),
        _luhn("555555555555444"),
        _luhn("37828224631000"),
        _luhn("222300000000000"),
    )
    order_id = _not_luhn("400000123456789")
    b.add(
        "visa in message",
        "message",
        in_message(f"charge {visa} declined, order {order_id}"),
        visa,
        decoys=(order_id,),
    )
    b.add(
        "mastercard spaced in exception",
        "exception",
        in_exception(f"card {_spaced(mc)} expired"),
        _spaced(mc),
    )
    b.add(
        "amex dashed in extra",
        "extra",
        in_extra("payment", f"amex {amex[:4]}-{amex[4:10]}-{amex[10:]}"),
        f"{amex[:4]}-{amex[4:10]}-{amex[10:]}",
    )
    b.add("card as integer in span data", "span data", in_span_data("biz.card", int(visa)), visa)
    b.add(
        "mastercard 2-series in breadcrumb",
        "breadcrumb",
        in_breadcrumb(f"retrying card {mc2}"),
        mc2,
    )
    b.add(
        "order id decoy",
        "span data",
        in_span_data("biz.order_number", order_id),
        decoys=(order_id,),
    )

    # US social security numbers
    b.add(
        "ssn in message",
        "message",
        in_message("identity check failed for 123-45-6789"),
        "123-45-6789",
    )
    b.add(
        "ssn in context",
        "contexts",
        in_context("applicant", {"tax_ref": "ssn 078-05-1120"}),
        "078-05-1120",
    )
    b.add(
        "ssn in span data",
        "span data",
        in_span_data("biz.applicant", "SSN: 219-09-9999"),
        "219-09-9999",
    )

    # IBANs (mod-97 valid), with an invalid look-alike
    de, gb, nl = (
        _iban("DE", "370400440532013000"),
        _iban("GB", "WEST12345698765432"),
        _iban("NL", "ABNA0417164300"),
    )
    bad_iban = de[:2] + f"{(int(de[2:4]) + 1) % 100:02d}" + de[4:]
    b.add("iban in exception", "exception", in_exception(f"SEPA transfer to {de} rejected"), de)
    b.add(
        "iban spaced in message",
        "message",
        in_message(f"refund to {_spaced(gb)} queued"),
        _spaced(gb),
    )
    b.add("iban in extra", "extra", in_extra("payout_account", nl), nl)
    b.add("iban in trace data", "trace data", in_trace_data("biz.payee", f"payee {nl}"), nl)
    b.add(
        "iban-shaped decoy",
        "span data",
        in_span_data("biz.reference", bad_iban),
        decoys=(bad_iban,),
    )

    # Bearer / Basic credentials
    bearer1, bearer2 = _token(40), _token(32)
    basic = "YWxpY2U6czNjcjN0LXB3"  # alice:s3cr3t-pw
    b.add(
        "authorization header",
        "headers",
        in_request(headers={"Authorization": f"Bearer {bearer1}", "Accept": "application/json"}),
        bearer1,
    )
    b.add(
        "bearer in exception",
        "exception",
        in_exception(f"401 from ERP using Bearer {bearer2}"),
        bearer2,
    )
    b.add(
        "basic auth in span data",
        "span data",
        in_span_data("http.request.header.authorization", f"Basic {basic}"),
        basic,
    )
    b.add(
        "bearer in breadcrumb data",
        "breadcrumb data",
        in_breadcrumb_data("request_headers", f"Authorization: Bearer {bearer1[::-1]}"),
        bearer1[::-1],
    )

    # Vendor API keys
    stripe_live, stripe_test, stripe_pk = (
        f"sk_live_{_token(24)}",
        f"sk_test_{_token(24)}",
        f"pk_live_{_token(24)}",
    )
    ghp, gho, ghpat = (
        f"ghp_{_token(36)}",
        f"gho_{_token(36)}",
        f"github_pat_{_token(22)}_{_token(59)}",
    )
    aws = "AKIA" + _token(16, string.ascii_uppercase + string.digits)
    slack_bot, slack_user = (
        f"xoxb-{_token(12, string.digits)}-{_token(24)}",
        f"xoxp-{_token(12, string.digits)}-{_token(24)}",
    )
    b.add(
        "stripe live key in exception",
        "exception",
        in_exception(f"stripe.error.AuthenticationError: Invalid API Key provided: {stripe_live}"),
        stripe_live,
    )
    b.add(
        "stripe test key in extra",
        "extra",
        in_extra("stripe_client", f"StripeClient(key={stripe_test!r})"),
        stripe_test,
    )
    b.add("stripe publishable key in tag", "tags", in_tag("stripe_account", stripe_pk), stripe_pk)
    b.add("github token in breadcrumb", "breadcrumb", in_breadcrumb(f"cloning with {ghp}"), ghp)
    b.add(
        "github oauth token in span data",
        "span data",
        in_span_data("vcs.client", f"token {gho}"),
        gho,
    )
    b.add(
        "github fine-grained pat in message",
        "message",
        in_message(f"deploy hook used {ghpat}"),
        ghpat,
    )
    b.add(
        "aws key id in context",
        "contexts",
        in_context("cloud", {"credentials_hint": f"using {aws}"}),
        aws,
    )
    b.add(
        "aws key id in span data",
        "span data",
        in_span_data("aws.client", f"boto3 session {aws}"),
        aws,
    )
    b.add(
        "slack bot token in extra",
        "extra",
        in_extra("notifier", {"client": f"WebClient({slack_bot})"}),
        slack_bot,
    )
    b.add(
        "slack user token in message",
        "message",
        in_message(f"posting as {slack_user} failed"),
        slack_user,
    )

    # Generic api_key=..., token=..., password=... assignments and URLs
    k1, k2, k3, t1, p1 = _token(32), _token(28), _token(20), _token(24), _token(12)
    b.add(
        "api_key in url query",
        "request url",
        in_request(url=f"https://api.partner.example/v1/rates?currency=EUR&api_key={k1}"),
        k1,
    )
    b.add(
        "api_key in query string",
        "query string",
        in_request(query_string=f"page=2&apikey={k2}"),
        k2,
    )
    b.add(
        "access_token in http span url",
        "span data",
        in_span_data("url.full", f"https://erp.internal/cb?code=7&access_token={t1}"),
        t1,
    )
    b.add(
        "api key in span description",
        "span description",
        in_span_description(
            "http.client", f"GET https://maps.example/geo?key_id=4&api-key={k3}", {}
        ),
        k3,
    )
    b.add(
        "password in log line", "message", in_message(f"login attempt user=bob password={p1}"), p1
    )
    b.add(
        "password in json breadcrumb",
        "breadcrumb",
        in_breadcrumb(f'payload {{"user": "bob", "password": "{p1[::-1]}"}}'),
        p1[::-1],
    )
    b.add(
        "password said in exception",
        "exception",
        in_exception(f"reset failed: new password is {p1.upper()}"),
        p1.upper(),
    )
    b.add(
        "secret in breadcrumb prose",
        "breadcrumb",
        in_breadcrumb(f"client secret {k3[::-1]} rotated"),
        k3[::-1],
    )

    # JWTs
    jwt = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFuYSJ9."
        + _token(43)
    )
    b.add("jwt in exception", "exception", in_exception(f"token expired: {jwt}"), jwt)
    b.add("jwt in span data", "span data", in_span_data("rpc.metadata", f"x-session={jwt}"), jwt)
    b.add("jwt in cookie", "cookies", in_request(cookies={"id_token": jwt}), jwt)

    # Passwords in URLs
    dbpw, ftppw = _token(14), _token(10)
    b.add(
        "db url password in exception",
        "exception",
        in_exception(f"could not connect to postgres://billing:{dbpw}@db.internal:5432/billing"),
        dbpw,
    )
    b.add(
        "url password in span data",
        "span data",
        in_span_data("url.full", f"ftp://exports:{ftppw}@ftp.partner.example/out.csv"),
        ftppw,
    )

    # Secrets by key name
    pw, sec, tok, sess, csrf, xsrf = (
        _token(12),
        _token(30),
        _token(30),
        _token(26),
        _token(32),
        _token(32),
    )
    b.add("password in extra", "extra", in_extra("password", pw), pw)
    b.add(
        "dotted password attribute",
        "span data",
        in_span_data("biz.user_password", pw[::-1]),
        pw[::-1],
    )
    b.add("client secret in context", "contexts", in_context("oauth", {"client_secret": sec}), sec)
    b.add("x-api-key header", "headers", in_request(headers={"X-Api-Key": sec[::-1]}), sec[::-1])
    b.add(
        "header attribute", "span data", in_span_data("http.request.header.x_auth_token", tok), tok
    )
    b.add(
        "session cookie", "cookies", in_request(cookies={"sessionid": sess, "theme": "dark"}), sess
    )
    b.add(
        "cookie header",
        "headers",
        in_request(headers={"Cookie": f"csrftoken={csrf}; sessionid={sess[::-1]}"}),
        csrf,
        sess[::-1],
    )
    b.add("xsrf header", "headers", in_request(headers={"X-XSRF-TOKEN": xsrf}), xsrf)
    b.add(
        "nested secret in extra",
        "extra",
        in_extra(
            "config",
            {"db": {"host": "db.internal", "credentials": {"user": "app", "pass": tok[::-1]}}},
        ),
        tok[::-1],
    )
    b.add(
        "camelCase key in frame vars",
        "frame vars",
        in_frame_vars({"accessToken": tok.lower(), "amount": "12.50"}),
        tok.lower(),
    )
    b.add(
        "mysql_pwd in frame vars",
        "frame vars",
        in_frame_vars({"mysql_pwd": pw.upper()}),
        pw.upper(),
    )
    b.add(
        "token in trace data",
        "trace data",
        in_trace_data("biz.refresh_token", sec.lower()),
        sec.lower(),
    )
    b.add(
        "secrets in a list",
        "extra",
        in_extra("attempts", [{"api_key": k1[::-1]}, {"api_key": k2[::-1]}]),
        k1[::-1],
        k2[::-1],
    )
    b.add(
        "token counter decoy",
        "span data",
        in_span_data("gen_ai.usage.input_tokens", 1234),
        decoys=("1234",),
    )

    # Private keys
    pem_body = "MIIEowIBAAKCAQEA" + _token(64, string.ascii_letters + string.digits + "+/")
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----"
    b.add("private key in extra", "extra", in_extra("tls", {"material": pem}), pem_body)

    # SQL literals
    b.add(
        "email literal in db description",
        "span description",
        in_span_description(
            "db",
            "SELECT id FROM customers WHERE email = 'pat.lee@example.com'",
            {"db.system.name": "postgresql"},
        ),
        "pat.lee@example.com",
    )
    b.add(
        "card literal in db.query.text",
        "span data",
        in_span_description(
            "db",
            "UPDATE cards SET number = ? WHERE id = ?",
            {"db.query.text": f"UPDATE cards SET number = '{mc}' WHERE id = 9"},
        ),
        mc,
    )
    b.add(
        "secret literal in db.statement",
        "span data",
        in_span_description(
            "db.sql.query",
            "INSERT INTO api_keys VALUES (?, ?)",
            {"db.statement": f"INSERT INTO api_keys VALUES (7, '{k2.lower()}')"},
        ),
        k2.lower(),
    )
    b.add(
        "sql breadcrumb",
        "breadcrumb",
        in_breadcrumb(f"SELECT * FROM users WHERE password_hash = '{sec[:20]}'", category="query"),
        sec[:20],
    )

    # A secret nothing can recognise: a bare token in a URL path
    magic = _token(22)
    b.add(
        "magic link token in url path",
        "span data",
        in_span_data("url.full", f"https://app.example.com/login/magic/{magic}"),
        magic,
        gap=True,
    )
    return b.cases
