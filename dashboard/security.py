"""Signed session cookies and CSRF tokens (itsdangerous).

The session cookie holds ``{"u": username or None, "csrf": token}`` signed with
``DASHBOARD_SECRET_KEY`` and timestamped (expires after ``SESSION_MAX_AGE``); it is
HttpOnly (no script reads it) and SameSite=Lax (other sites' forms do not send it). Every
form carries the session's CSRF token; a POST whose token differs is refused with 403 --
the login form too (a session without a user gets its token on the first visit).
"""
from __future__ import annotations

import hmac
import secrets
from typing import Any, Dict, Optional

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "bakame_dashboard"
SESSION_MAX_AGE = 8 * 3600  # one working day


class Sessions:
    def __init__(self, secret_key: str, secure: bool = False) -> None:
        self.serializer = URLSafeTimedSerializer(secret_key, salt="bakame-dashboard-session")
        self.secure = secure

    def new(self, username: Optional[str] = None) -> Dict[str, Any]:
        """A fresh session (a new CSRF token; at login too, so a token seen before is useless)."""
        return {"u": username, "csrf": secrets.token_urlsafe(32)}

    def load(self, cookie: Optional[str]) -> Optional[Dict[str, Any]]:
        if not cookie:
            return None
        try:
            data = self.serializer.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        return data

    def store(self, response: Any, session: Dict[str, Any]) -> None:
        response.cookies[COOKIE] = self.serializer.dumps(session)
        cookie = response.cookies[COOKIE]
        cookie["httponly"] = True
        cookie["samesite"] = "Lax"
        cookie["path"] = "/"
        cookie["max-age"] = SESSION_MAX_AGE
        if self.secure:
            cookie["secure"] = True


def csrf_ok(session: Optional[Dict[str, Any]], submitted: Optional[str]) -> bool:
    expected = (session or {}).get("csrf")
    return bool(expected and submitted) and hmac.compare_digest(str(expected), str(submitted))
