"""What the nightly jobs learned, read only: association rules mined from orders and a customer's
product recommendations (``crm_core.services.market_basket``, as ``/rules`` and ``/recommend``), and
churn risk with RFM scores (``customer_scores``, as on the card; ``models:read``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from bot.api.auth import Principal, need, unit_of_work
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.api.types import Id
from bot.roles import Permission
from crm_core.errors import NotFound
from crm_core.models import CustomerScore, MinedRule
from crm_core.services import customers, market_basket
from crm_core.uow import UnitOfWork

router = APIRouter(tags=["insights"])


class RuleOut(BaseModel):
    id: int
    # Customers who bought all of these products…
    antecedent: list[int]
    # …often buy this one too.
    consequent_id: int
    consequent: str
    support: float
    confidence: float
    lift: float
    count: int


class RecommendationOut(BaseModel):
    product_id: int
    product: str
    # The products they bought recently that make this one likely.
    because: list[int]
    confidence: float
    lift: float


class Recommendations(BaseModel):
    customer_id: int
    # The mining run the rules come from; null if nothing was mined yet.
    run_id: int | None
    items: list[RecommendationOut]


class ScoreOut(BaseModel):
    customer_id: int
    # 0..1; null until the churn model has a published run.
    churn_risk: float | None
    recency_score: int | None
    frequency_score: int | None
    monetary_score: int | None
    rfm_segment: str | None
    scored_at: datetime


def _rule(rule: MinedRule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        antecedent=list(rule.antecedent),
        consequent_id=rule.consequent_id,
        consequent=rule.consequent.name,
        support=rule.support,
        confidence=rule.confidence,
        lift=rule.lift,
        count=rule.count,
    )


def _score(score: CustomerScore) -> ScoreOut:
    return ScoreOut.model_validate(score, from_attributes=True)


@router.get("/rules", response_model=Page[RuleOut], summary="Association rules of the latest mining run")
def list_rules(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    consequent_id: Id | None = Query(None, description="Only rules that suggest this product"),
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    run = market_basket.latest_run(uow)
    statement = sa.select(MinedRule).where(MinedRule.run_id == (run.id if run else -1))
    if consequent_id is not None:
        statement = statement.where(MinedRule.consequent_id == consequent_id)
    return paginate(
        uow.session, statement, MinedRule.id, page, request, response, lambda rows: [_rule(r) for r in rows]
    )


@router.get(
    "/customers/{customer_id}/recommendations",
    response_model=Recommendations,
    summary="Products a customer is likely to buy next, with the reason",
)
def recommendations(
    customer_id: Id,
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    customers.get_customer(uow, customer_id)
    run = market_basket.latest_run(uow)
    suggestions = market_basket.recommend(uow, customer_id) if run else []
    names = market_basket.product_names(uow, [s.product_id for s in suggestions])
    return Recommendations(
        customer_id=customer_id,
        run_id=run.id if run else None,
        items=[
            RecommendationOut(
                product_id=s.product_id,
                product=names.get(s.product_id, ""),
                because=list(s.because),
                confidence=s.confidence,
                lift=s.lift,
            )
            for s in suggestions
        ],
    )


@router.get("/scores", response_model=Page[ScoreOut], summary="Churn risk and RFM scores of every scored customer")
def list_scores(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    rfm_segment: str | None = Query(None, max_length=30, description="e.g. champions, at_risk"),
    min_churn_risk: float | None = Query(None, ge=0, le=1),
    _who: Principal = Depends(need(Permission.MODELS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    statement = sa.select(CustomerScore)
    if rfm_segment is not None:
        statement = statement.where(CustomerScore.rfm_segment == rfm_segment)
    if min_churn_risk is not None:
        statement = statement.where(CustomerScore.churn_risk >= min_churn_risk)
    return paginate(
        uow.session,
        statement,
        CustomerScore.customer_id,
        page,
        request,
        response,
        lambda rows: [_score(s) for s in rows],
    )


@router.get("/customers/{customer_id}/score", response_model=ScoreOut, summary="A customer's churn risk and RFM")
def customer_score(
    customer_id: Id,
    _who: Principal = Depends(need(Permission.MODELS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    customers.get_customer(uow, customer_id)
    score = uow.session.get(CustomerScore, customer_id)
    if score is None:
        raise NotFound(f"customer #{customer_id} has no scores yet (they are computed nightly)")
    return _score(score)
