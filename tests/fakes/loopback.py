"""One TLS context for the tests' own HTTP requests to servers on 127.0.0.1 (webhook deliveries,
health checks).

``httpx.post``/``httpx.get`` build a client for each call, and each client loads the CA bundle
into a new TLS context, about 20 ms of CPU, even for a plain ``http://`` URL that never uses it;
the crash tests poll /healthz every few milliseconds while a web process starts. Requests given
this context, built once, skip that and are otherwise the same.
"""

from __future__ import annotations

import ssl

LOOPBACK_TLS = ssl.create_default_context()
