"""``GET /plugins/example/quote``: the /quote price as JSON, for a web shop or a spreadsheet.

Plugin routes check authorisation themselves: this one wants ``Authorization: Bearer <token>`` with
the token in ``CHATCRM_EXAMPLE_TOKEN``, and is off (404) while that is not set. It only prices; it
logs nothing on the customer.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from bot.bootstrap import App

TOKEN_SETTING = "CHATCRM_EXAMPLE_TOKEN"


def routes(app: App) -> list[BaseRoute]:
    async def quote(request: Request) -> JSONResponse:
        token = app.settings.extra.get(TOKEN_SETTING, "")
        if not token:
            return JSONResponse({"error": "not found"}, status_code=404)
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "a valid bearer token is required"}, status_code=401)
        params = request.query_params
        missing = [name for name in ("customer", "product", "qty") if not params.get(name)]
        if missing:
            return JSONResponse({"error": f"missing: {', '.join(missing)}"}, status_code=400)
        # isdigit() alone accepts "²" (which int() refuses) and 5,000 digits (which int() refuses too).
        qty = params["qty"]
        if not (qty.isascii() and qty.isdigit() and len(qty) <= 9):
            return JSONResponse({"error": "qty must be a whole number"}, status_code=400)
        return await run_in_threadpool(_price, app, params["customer"], params["product"], int(params["qty"]))

    return [Route("/plugins/example/quote", quote, methods=["GET"])]


def _price(app: App, customer_ref: str, product_ref: str, quantity: int) -> JSONResponse:
    from chatcrm_example import pricing
    from crm_core.errors import NotFound, ValidationError
    from crm_core.services import customers
    from crm_core.services.market_basket import find_product

    try:
        with app.uow() as uow:
            customer = customers.resolve_customer(uow, customer_ref)
            product = find_product(uow, product_ref)
            return JSONResponse(pricing.price(uow, customer, product, quantity).as_json())
    except NotFound as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except ValidationError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
