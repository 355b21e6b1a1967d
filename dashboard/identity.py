"""Who the analyst is: from Streamlit's own login, else the authenticating proxy, else (local demo) typed in.

Streamlit's OpenID Connect login (``st.login``) is on when ``.streamlit/secrets.toml`` has an
``[auth]`` section; then ``st.user`` always holds ``is_logged_in`` and only it is believed (the
browser talks to Streamlit directly, so a forwarded header would be the client's own). Behind
the deployments' proxy (nginx basic auth in compose, oauth2-proxy in k8s), the proxy replaces
``X-Forwarded-User`` / ``X-Forwarded-Email`` with the signed-in name, and only it can reach the
dashboard. Neither: the loopback-only local demo, where analysts type a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st

PROXY_HEADERS = ("X-Forwarded-User", "X-Forwarded-Email")
USER_CLAIMS = ("email", "preferred_username", "name", "sub")
MAX_NAME_CHARS = 128

Source = Literal["login", "proxy", "typed"]


@dataclass(frozen=True)
class Identity:
    """The analyst's name (``None`` until typed, for ``typed``) and where it comes from."""

    name: str | None
    source: Source
    detail: str = ""

    def describe(self) -> str:
        if self.source == "login":
            return f"Signed in as {self.name} (identity provider{': ' + self.detail if self.detail else ''})"
        if self.source == "proxy":
            return f"Signed in as {self.name} (from the authenticating proxy, {self.detail})"
        return "No sign-in configured (local demo): corrections carry the name you type"


def login_configured(user: Mapping[str, Any]) -> bool:
    """Streamlit's OIDC login is set up: ``st.user`` then always says whether someone is logged in."""
    return "is_logged_in" in user


def _clean(value: object) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text[:MAX_NAME_CHARS] or None


def identify(headers: Mapping[str, str], user: Mapping[str, Any]) -> Identity:
    """The analyst's identity: OIDC login if configured, else a proxy header, else typed in (local demo)."""
    if login_configured(user):
        name = next((n for n in (_clean(user.get(c)) for c in USER_CLAIMS) if n), None)
        if user.get("is_logged_in") and name:
            return Identity(name, "login")
        return Identity(None, "login")  # configured, not (or not usably) signed in: app.py asks to log in
    for header in PROXY_HEADERS:
        name = _clean(headers.get(header))
        if name:
            return Identity(name, "proxy", header)
    return Identity(None, "typed")


def current() -> Identity:
    """The identity of the session running this script."""
    return identify(st.context.headers, dict(st.user))
