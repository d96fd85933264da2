"""How the bot's GitHub token reaches ``git`` (fetch, ``ls-remote``, push), never on disk.

GitHub documents HTTP Basic auth for git over HTTPS with an installation token: user
``x-access-token``, password the token (``actions/checkout`` sends the same header for
any token it is given). The header is handed to the one git process that needs it as
configuration in its environment (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/
``GIT_CONFIG_VALUE_n``, git >= 2.31)::

    http.<remote URL>.extraHeader = ""                        (drop inherited headers)
    http.<remote URL>.extraHeader = Authorization: Basic base64(x-access-token:TOKEN)
    credential.helper = ""                                    (no helper is asked or told)

and ``GIT_ASKPASS=""``, ``GIT_TERMINAL_PROMPT=0``. Why this rather than ``GIT_ASKPASS``
with the token in the environment:

- nothing is written anywhere: an askpass program is a file, and git hands what askpass
  answers to ``credential approve``, so a configured ``credential.helper store`` would
  write the token to ``~/.git-credentials``; here no credential helper runs at all;
- the token is never in argv (``ps``), ``.git/config``, a remote URL or a message; git
  redacts the header in ``GIT_TRACE_CURL`` (``GIT_TRACE_REDACT`` is forced on);
- it is scoped by git's own URL matching to the remote's URL, and it replaces a header
  ``actions/checkout`` persisted for the same host (``http.https://github.com/
  .extraheader``, less specific), so the push is the App's, not the checkout token's;
  libcurl does not send it on to another host after a redirect;
- it fails closed: a refused token is an error (HTTP 401), never a fallback to other
  credentials or an interactive prompt that hangs the bot.

The token is sent only where it belongs: an ``https://`` remote on the GitHub host the
API client talks to (``api.github.com`` -> ``github.com``; GitHub Enterprise
``https://HOST/api/v3`` -> ``HOST``), or plain ``http://`` on a loopback host (a local
test server). Any other remote (ssh, ``file://``, a path, another host) is used exactly
as before, with its own credentials.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

USERNAME = "x-access-token"

REFUSED = re.compile(
    r"Authentication failed|could not read (Username|Password)|"
    r"requested URL returned error: 40[13]|HTTP 40[13]|Invalid username or password",
    re.IGNORECASE)
"""What git prints when the server refused the credentials."""


class TokenUnavailable(Exception):
    """``GitToken.token()`` could not give a token (e.g. the App's exchange failed)."""


@dataclass(frozen=True)
class GitToken:
    """The GitHub credentials git uses: ``token()`` is called for every git process (an
    App's installation token is refreshed before it expires); ``invalidate`` (an App)
    drops a token the remote refused so that the next call exchanges a new one.
    ``token()`` raises :class:`TokenUnavailable` when it has none."""

    host: str
    """The git host the token is for (``github.com``, a GitHub Enterprise host)."""
    token: Callable[[], str]
    invalidate: Callable[[], None] | None = None


def git_host(api_url: str) -> str:
    """The git host of a GitHub REST API base URL."""
    host = (urlsplit(api_url).hostname or "").lower()
    return "github.com" if host == "api.github.com" else host


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_url(url: str, host: str) -> str | None:
    """The URL to scope the header to (``url`` without any user info), or None when the
    token must not go to ``url``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    remote_host = (parts.hostname or "").lower()
    if not remote_host or remote_host != host.lower():
        return None
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(remote_host)):
        return None
    netloc = remote_host if ":" not in remote_host else f"[{remote_host}]"
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}{parts.path or '/'}"


def auth_env(urls: Iterable[str], token: str, environ: Mapping[str, str] = os.environ
             ) -> dict[str, str]:
    """Environment variables that make one git process send ``token`` to ``urls`` (already
    checked with :func:`config_url`), after any ``GIT_CONFIG_*`` entries already set."""
    if not token or any(c in token for c in "\r\n\0"):
        raise ValueError("the GitHub token is empty or has a line break")
    secret = base64.b64encode(f"{USERNAME}:{token}".encode()).decode("ascii")
    entries = [("credential.helper", "")]
    for url in dict.fromkeys(urls):
        entries += [(f"http.{url}.extraHeader", ""),
                    (f"http.{url}.extraHeader", f"Authorization: Basic {secret}")]
    try:
        start = int(environ.get("GIT_CONFIG_COUNT", "0") or "0")
    except ValueError:
        start = 0
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "",
           "GIT_TRACE_REDACT": "1", "GIT_CONFIG_COUNT": str(start + len(entries))}
    for i, (key, value) in enumerate(entries, start):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env
