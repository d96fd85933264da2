"""The modelpin hook built from the proxy's config.yaml exactly as ``proxy_handler`` is,
except that it resolves on the event loop (the sticky-session Redis round trip blocks the
loop, as before the lookup moved to worker threads): the benchmark's control for the
price of that move, measured through a real proxy in the same run."""

from __future__ import annotations

from modelpin.integrations.litellm import from_proxy_config

handler = from_proxy_config(remote_sessions=False)
