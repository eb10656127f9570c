"""/model: the churn model's honest evaluation, and (admins) retraining it now.

``/model train as_of=2011-12-09`` trains on a history as of that day; without it the history ends
now, or at the newest order's day when nobody ordered in the churn horizon (crm_core.history).
"""

from __future__ import annotations

from datetime import time

from bot.args import Kind, opt
from bot.context import Context
from bot.handlers.common import fmt_datetime
from bot.hookspecs import hookimpl
from bot.messages import Field, Item, Reply, Request, Section, Tone
from bot.plugin_types import JobDefinition
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import history
from crm_core.predictions.scores import latest_run, refresh_scores
from crm_core.scheduling import Calendar, JobRun, parse_hhmm

group = CommandGroup()


def _run_reply(run, ctx: Context, note: str | None = None) -> Reply:
    tz = ctx.caller.timezone
    metrics = run.metrics or {}
    fields = [
        Field("Trained", fmt_datetime(run.trained_at, tz)),
        Field("Status", "published" if run.published else "not published"),
        Field("Model", run.algorithm or "—"),
        Field("ROC AUC (holdout)", f"{run.roc_auc:.3f}" if run.roc_auc is not None else "—"),
        Field("Brier score", f"{metrics['brier']:.3f}" if "brier" in metrics else "—"),
        Field("Train / test customers", f"{run.train_size} / {run.test_size}"),
        Field(
            "Train cut-off → test cut-off",
            f"{fmt_datetime(run.train_cutoff, tz)} → {fmt_datetime(run.test_cutoff, tz)}",
            short=False,
        ),
    ]
    if run.as_of is not None and run.as_of_source not in (None, history.NOW):
        fields.append(Field("History as of", f"{history.day_of(run.as_of)} ({run.as_of_source})"))
    sections = []
    if metrics.get("calibration"):
        sections.append(
            Section(
                title="Calibration on the holdout (predicted vs observed churn)",
                items=tuple(
                    Item(text=f"predicted {p:.0%} → observed {o:.0%}", detail=f"{n} customers")
                    for p, o, n in metrics["calibration"]
                ),
            )
        )
    if metrics.get("candidates"):
        sections.append(
            Section(
                title="Candidates (holdout ROC AUC)",
                items=tuple(Item(text=f"{name}: {auc:.3f}") for name, auc in metrics["candidates"].items()),
            )
        )
    return Reply(
        title=f"Churn model, run #{run.id}",
        text=note or run.note,
        fields=tuple(fields),
        sections=tuple(sections),
        footer="Trained on one period, tested on the next 90 days it never saw. Published only if AUC ≥ 0.6.",
    )


@group.command("model", summary="The churn model: holdout ROC AUC and calibration", permission=Permission.MODELS_READ)
def show_model(req: Request, ctx: Context) -> Reply:
    run = latest_run(ctx.uow)
    if run is None:
        return Reply(
            text="No churn model has been trained yet. It trains nightly; an admin can run /model train.",
            tone=Tone.WARNING,
        )
    return _run_reply(run, ctx)


@group.command(
    "model train",
    summary="Retrain the churn model and rescore customers now (admin)",
    permission=Permission.MODELS_TRAIN,
    params=[opt("as_of", Kind.DATE, label="As of (last day)", hint="2011-12-09")],
)
def train_model(req: Request, ctx: Context) -> Reply:
    as_of = history.parse_day(req.args["as_of"]) if req.args.get("as_of") else None
    run = refresh_scores(ctx.uow, as_of=as_of)
    return _run_reply(run, ctx, note=f"Retrained in {run.duration_ms / 1000:.1f} s. {run.note}")


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]


def score_nightly(run: JobRun) -> None:
    """Retrain the churn model and refresh every customer's scores."""
    from crm_core.predictions.scores import nightly_task

    nightly_task(run)


@hookimpl
def register_jobs(settings) -> list[JobDefinition]:
    env = settings.extra
    mining_at = parse_hhmm(env.get("CHATCRM_MINING_AT", "02:00"))
    # The churn model trains half an hour after mining, so the two heavy jobs do not coincide.
    minutes = (mining_at.hour * 60 + mining_at.minute + 30) % (24 * 60)
    return [
        JobDefinition(
            "predictions.nightly",
            score_nightly,
            "retrain the churn model and refresh scores",
            trigger=Calendar(time(minutes // 60, minutes % 60), env.get("CHATCRM_TIMEZONE", "UTC")),
            misfire_grace_seconds=6 * 3600,
        )
    ]
