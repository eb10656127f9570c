"""/model: the churn model's honest evaluation, and (admins) retraining it now.

``/model train as_of=2011-12-09`` trains on a history as of that day; without it the history ends
now, or at the newest order's day when nobody ordered in the churn horizon (crm_core.history).
"""

from __future__ import annotations

from datetime import time

from bot.args import Kind, opt
from bot.context import Context
from bot.handlers.common import fmt_date, fmt_datetime
from bot.hookspecs import hookimpl
from bot.messages import Field, Item, Reply, Request, Section, Tone
from bot.plugin_types import JobDefinition
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import history, i18n
from crm_core.i18n import N_, _, ngettext
from crm_core.predictions import run_notes
from crm_core.predictions.scores import latest_run, refresh_scores
from crm_core.scheduling import Calendar, JobRun, parse_hhmm

group = CommandGroup()


def _run_reply(run, ctx: Context, note: str | None = None) -> Reply:
    tz = ctx.caller.timezone
    metrics = run.metrics or {}
    fields = [
        Field(_("Trained"), fmt_datetime(run.trained_at, tz)),
        Field(_("Status"), _("published") if run.published else _("not published")),
        Field(_("Model"), model_name(run.algorithm)),
        Field(_("ROC AUC (holdout)"), _score(run.roc_auc) if run.roc_auc is not None else "—"),
        Field(_("Brier score"), _score(metrics["brier"]) if "brier" in metrics else "—"),
        Field(_("Train / test customers"), f"{run.train_size} / {run.test_size}"),
        Field(
            _("Train cut-off → test cut-off"),
            f"{fmt_datetime(run.train_cutoff, tz)} → {fmt_datetime(run.test_cutoff, tz)}",
            short=False,
        ),
    ]
    if run.as_of is not None and run.as_of_source not in (None, history.NOW):
        as_of = f"{fmt_date(history.day_of(run.as_of))} ({history.source_label(run.as_of_source)})"
        fields.append(Field(_("History as of"), as_of))
    sections = []
    if metrics.get("calibration"):
        sections.append(
            Section(
                title=_("Calibration on the holdout (predicted vs observed churn)"),
                items=tuple(
                    Item(
                        text=_(
                            "predicted {predicted} → observed {observed}",
                            predicted=i18n.format_percent(p),
                            observed=i18n.format_percent(o),
                        ),
                        detail=ngettext("{count} customer", "{count} customers", n, count=i18n.format_number(n)),
                    )
                    for p, o, n in metrics["calibration"]
                ),
            )
        )
    if metrics.get("candidates"):
        sections.append(
            Section(
                title=_("Candidates (holdout ROC AUC)"),
                items=tuple(
                    Item(text=f"{model_name(name)}: {_score(auc)}") for name, auc in metrics["candidates"].items()
                ),
            )
        )
    return Reply(
        title=_("Churn model, run #{id}", id=run.id),
        text=note or run_notes.describe(run),
        fields=tuple(fields),
        sections=tuple(sections),
        footer=_("Trained on one period, tested on the next 90 days it never saw. Published only if AUC ≥ 0.6."),
    )


def _score(value: float) -> str:
    return i18n.format_number(value, digits=3)


@group.command(
    "model", summary=N_("The churn model: holdout ROC AUC and calibration"), permission=Permission.MODELS_READ
)
def show_model(req: Request, ctx: Context) -> Reply:
    run = latest_run(ctx.uow)
    if run is None:
        return Reply(
            text=_("No churn model has been trained yet. It trains nightly; an admin can run /model train."),
            tone=Tone.WARNING,
        )
    return _run_reply(run, ctx)


@group.command(
    "model train",
    summary=N_("Retrain the churn model and rescore customers now (admin)"),
    permission=Permission.MODELS_TRAIN,
    params=[opt("as_of", Kind.DATE, label=N_("As of (last day)"), hint="2011-12-09")],
)
def train_model(req: Request, ctx: Context) -> Reply:
    as_of = history.parse_day(req.args["as_of"]) if req.args.get("as_of") else None
    run = refresh_scores(ctx.uow, as_of=as_of)
    return _run_reply(
        run,
        ctx,
        note=_(
            "Retrained in {seconds} s. {note}",
            seconds=i18n.format_number(run.duration_ms / 1000, digits=1),
            note=run_notes.describe(run),
        ),
    )


# The stored names of crm_core.predictions.churn's candidates, shown in the reader's language.
_MODEL_NAMES = {
    "logistic regression": N_("logistic regression"),
    "gradient-boosted trees": N_("gradient-boosted trees"),
}


def model_name(algorithm: str | None) -> str:
    if not algorithm:
        return "—"
    return _(_MODEL_NAMES[algorithm]) if algorithm in _MODEL_NAMES else algorithm


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
