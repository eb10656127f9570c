"""The REST API (``/api/v1``): other systems read and write the CRM over HTTP.

A FastAPI app mounted in ``chatcrm web`` through the ``register_routes`` hook (``bot.api.plugin``),
exactly as a third-party plugin adds routes. It is a third door to the same service layer as the
chat handlers: every endpoint calls ``crm_core.services`` in a unit of work and checks the same
``bot.roles`` permissions, narrowed by the token's scopes.

- ``gate``: the ASGI middleware in front (body size, bearer token, rate limit, Idempotency-Key);
- ``auth``: who is calling (``Principal``) and the permission dependencies;
- ``problems``: every error as ``application/problem+json`` (RFC 9457);
- ``paging``, ``etags``: cursor pagination and ETag/If-Match;
- ``customers`` (with notes), ``companies``, ``deals``, ``tickets``, ``followups``, ``products``, ``orders``,
  ``segments``, ``campaigns``, ``insights`` (rules, recommendations, scores), ``admin`` (audit, users):
  the resources.
"""
