"""The nightly market-basket job: mine the orders, then post each rep their customers' top suggestions.

Each rep gets one templated message (templates/recommendations) through the outbox, in their
language and on the platform they work on, with "Log as pitched" and "Not relevant" buttons per
suggestion. A suggestion is remembered as a ``Recommendation`` row when posted: the same product
is not posted again for the same customer within ``REPOST_AFTER``, and "Not relevant" stops it
for good.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa

from crm_core import history, i18n, outbox
from crm_core.clock import utcnow
from crm_core.i18n import N_, _
from crm_core.models import Customer, MiningRun, Recommendation, User
from crm_core.outbox_payload import PayloadButton
from crm_core.scheduling import JobRun
from crm_core.services import market_basket, users
from crm_core.templating import render_message
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.recommendations")

TEMPLATE = "recommendations"
REPOST_AFTER = timedelta(days=30)
# Per message: enough to act on in one sitting, and within Slack's 25 buttons per actions block.
MAX_PER_REP = 10
# Button labels, translated into each rep's language when their suggestions are posted.
PITCHED_LABEL = N_("Pitched #{n}")
NOT_RELEVANT_LABEL = N_("Not relevant #{n}")


def _recently_posted(uow: UnitOfWork, since: datetime) -> set[tuple[int, int]]:
    return set(
        uow.session.execute(
            sa.select(Recommendation.customer_id, Recommendation.product_id).where(Recommendation.posted_at >= since)
        ).all()
    )


def post_recommendations(uow: UnitOfWork, run: MiningRun, now: datetime | None = None) -> int:
    """Queue one message per rep with their customers' best new suggestions; returns how many were posted."""
    now = now or utcnow()
    rules = market_basket.latest_rules(uow)
    if not rules:
        return 0
    owned = dict(
        uow.session.execute(sa.select(Customer.id, Customer.owner_id).where(Customer.owner_id.is_not(None))).all()
    )
    # Recent purchases as of the rules' history (its newest order's day for a years-old history).
    bought = market_basket.purchases(uow, None, market_basket.rules_as_of(run, now) - market_basket.RECENT)
    dismissed = market_basket.not_relevant(uow)
    recent = _recently_posted(uow, now - REPOST_AFTER)
    per_rep: dict[int, list[tuple[int, market_basket.Suggestion]]] = defaultdict(list)
    for customer_id, (recent_products, ever) in bought.items():
        owner_id = owned.get(customer_id)
        if owner_id is None:
            continue
        excluded = dismissed.get(customer_id, set()) | {p for c, p in recent if c == customer_id}
        for suggestion in market_basket.suggestions_for(rules, recent_products, ever, excluded):
            per_rep[owner_id].append((customer_id, suggestion))
    posted = 0
    for owner_id, found in sorted(per_rep.items()):
        rep = uow.session.get(User, owner_id)
        address = users.dm_address(rep) if rep is not None and rep.active else None
        if rep is None or address is None:
            log.info("no chat account for %s: %d suggestions not posted", rep.name if rep else owner_id, len(found))
            continue
        found.sort(key=lambda pair: (-pair[1].score, pair[0], pair[1].product_id))
        chosen, more = found[:MAX_PER_REP], max(0, len(found) - MAX_PER_REP)
        posted += _post_to_rep(uow, rep, address, run, chosen, more, now)
    run.n_recommendations = posted
    return posted


def _post_to_rep(uow, rep: User, address: users.PlatformId, run: MiningRun, chosen, more: int, now: datetime) -> int:
    names = market_basket.product_names(
        uow, [s.product_id for _c, s in chosen] + [p for _c, s in chosen for p in s.because]
    )
    customer_names = dict(
        uow.session.execute(sa.select(Customer.id, Customer.name).where(Customer.id.in_([c for c, _s in chosen]))).all()
    )
    # The rep's words, numbers and days: the message, its buttons and the template's figures.
    with i18n.use_language(rep.language or i18n.default_language()):
        items, buttons = [], []
        for number, (customer_id, suggestion) in enumerate(chosen, start=1):
            because = [names.get(p, f"#{p}") for p in suggestion.because]
            items.append(
                {
                    "number": number,
                    "customer": {"id": customer_id, "name": customer_names[customer_id]},
                    "product": names.get(suggestion.product_id, f"#{suggestion.product_id}"),
                    "because": because[0]
                    if len(because) == 1
                    else _("{items} and {last}", items=", ".join(because[:-1]), last=because[-1]),
                    "confidence": i18n.format_number(suggestion.confidence, digits=2),
                    "lift": i18n.format_number(suggestion.lift, digits=1),
                }
            )
            command = f"{customer_id} {suggestion.product_id}"
            buttons.append(PayloadButton(_(PITCHED_LABEL, n=number), f"/recommend pitched {command}", "primary"))
            buttons.append(PayloadButton(_(NOT_RELEVANT_LABEL, n=number), f"/recommend dismiss {command}"))
            uow.session.add(
                Recommendation(
                    customer_id=customer_id,
                    product_id=suggestion.product_id,
                    run_id=run.id,
                    because=list(suggestion.because),
                    confidence=suggestion.confidence,
                    lift=suggestion.lift,
                    posted_at=now,
                    owner_id=rep.id,
                )
            )
        context = {
            "rep": {"name": rep.name},
            "items": items,
            "more": more,
            "run": {
                "id": run.id,
                "orders": run.n_baskets,
                "rules": run.n_rules,
                "days": run.window_days,
                # Set when the history stopped before the window: the message says which days it mined.
                "as_of": i18n.format_date(history.day_of(run.as_of))
                if run.as_of and run.as_of_source == history.NEWEST_ORDER
                else None,
            },
        }
        rendered = render_message(
            uow.session, TEMPLATE, address.platform, rep.language or i18n.default_language(), context
        )
        outbox.enqueue(
            uow,
            idempotency_key=f"recommendations:{run.id}:{rep.id}",
            kind="recommendation",
            platform=address.platform,
            conversation=address.external_id,
            payload=rendered.payload(buttons=tuple(buttons)),
            user_id=rep.id,
        )
        return len(chosen)


def nightly_task(run: JobRun) -> None:
    """Scheduled task (02:00 by default): mine, store the rules with their run, post suggestions."""
    settings = market_basket.MiningSettings.from_env(run.config)
    with run.uow() as uow:
        mining = market_basket.run_mining(uow, settings, trigger="nightly", now=run.fire_time)
        posted = post_recommendations(uow, mining, now=run.fire_time)
    log.info(
        "mining run #%s: %s",
        mining.id,
        f"Mined {mining.n_baskets:,} orders of {market_basket.run_window(mining)}: {mining.n_rules:,} rules, "
        f"{posted} suggestions posted in {mining.duration_ms} ms",
    )
