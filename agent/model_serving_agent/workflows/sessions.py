"""Login sessions for the guide's `curl -c cookies.txt` style: POST /api/v1/login with the agent token
sets an HttpOnly cookie holding a random session id (never the token), valid for session_ttl_seconds.
Sessions live in the agent's memory only (hashed), so an agent restart logs everyone out; the cookie
opens /api/v1/* only, model management keeps the bearer token."""

import hashlib
import secrets
import time
from typing import Dict, Optional

COOKIE = "model_serving_session"
COOKIE_PATH = "/api/v1/"


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, ttl_seconds: float):
        self.ttl_seconds = ttl_seconds
        self._expiry: Dict[str, float] = {}

    def create(self) -> str:
        self._prune()
        session_id = secrets.token_urlsafe(32)
        self._expiry[_key(session_id)] = time.monotonic() + self.ttl_seconds
        return session_id

    def valid(self, session_id: Optional[str]) -> bool:
        if not session_id:
            return False
        expiry = self._expiry.get(_key(session_id))
        return expiry is not None and expiry > time.monotonic()

    def end(self, session_id: Optional[str]) -> None:
        if session_id:
            self._expiry.pop(_key(session_id), None)

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[key]
