"""The scripted session: four visitors, each a real HTTP client with its own cookies.

- ana signs up as a creator, mistypes nothing, posts a picture and publishes it: her
  onboarding journey completes and she converts through the whole funnel.
- ben signs up as a customer, mistypes his password once, submits a post without a title,
  uploads a file the media pipeline cannot read, posts a (slow) video, tries to publish
  ana's post and finally discards his draft: his journey is abandoned.
- cara looks around and tries an SQL injection in the search box.
- from 203.0.113.7 (behind the site's proxy), someone guesses ana's password 11 times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import requests

#: The attacker's guesses. No password below may reach Sentry: the test searches every envelope.
GUESSES = [
    "123456!", "p4ssw0rd", "qwerty123", "letmein!", "ana2024", "Summer2024!",
    "iloveyou<3", "dragon99", "monkey-42", "trustno1", "hunter2",
]  # fmt: skip
PASSWORDS = {"ana": "correct-horse-battery", "ben": "tr0ub4dor&3"}
MISTYPED = "tr0ub4dor&4"
ATTACKER_IP = "203.0.113.7"


@dataclass
class Visitor:
    """One browser: a name, a cookie jar, and what it got back."""

    name: str
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    answers: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._http = requests.Session()
        self._http.headers.update(self.headers)

    def get(self, path: str, **params: str) -> Any:
        return self._call("GET", path, params=params)

    def post(self, path: str, **form: Optional[str]) -> Any:
        return self._call("POST", path, data=form)

    def sign_up(self, user_type: str) -> Any:
        return self.post(
            "/signup",
            username=self.name,
            email=f"{self.name}@example.com",
            password=PASSWORDS[self.name],
            user_type=user_type,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, self.base_url + path, timeout=10, **kwargs)
        self.answers.append((method, path, response.status_code))
        return response.json()

    def close(self) -> None:
        self._http.close()


def run_session(base_url: str) -> list[Visitor]:
    """Play the session against the site at ``base_url``; the visitors, in order."""
    ana, ben, cara = (Visitor(name, base_url) for name in ("ana", "ben", "cara"))
    attacker = Visitor("attacker", base_url, {"X-Forwarded-For": ATTACKER_IP})
    for visitor in (ana, ben, cara):
        visitor.get("/")

    ana.sign_up("creator")
    ana.post("/login", username="ana", password=PASSWORDS["ana"])
    picture = ana.post("/posts", title="Moodboard", body="Autumn palette", media="palette.png")
    ana.post(f"/posts/{picture['post_id']}/publish")

    ben.sign_up("customer")
    ben.post("/login", username="ben", password=MISTYPED)
    ben.post("/login", username="ben", password=PASSWORDS["ben"])
    ben.post("/posts", title="  ", body="no title yet")
    ben.post("/posts", title="Scan", body="from the printer", media="scan.tiff")
    video = ben.post("/posts", title="Unboxing", body="first look", media="unboxing.mp4")
    ben.post(f"/posts/{picture['post_id']}/publish")
    ben.post(f"/posts/{video['post_id']}/discard")

    cara.get("/search", q="chairs' OR 1=1 --")

    for guess in GUESSES:
        attacker.post("/login", username="ana", password=guess)

    visitors = [ana, ben, cara, attacker]
    for visitor in visitors:
        visitor.close()
    return visitors
