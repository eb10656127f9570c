"""The ``chatcrm`` command: run, console, web, worker, db and demo.

Every expected failure (no database, an old schema, a bad setting) ends with one line on stderr
and a non-zero exit code, never a traceback. Everything said to a person (help, progress, summaries,
errors) is in CHATCRM_LANGUAGE (``bot.cli_language``); what programs read (JSON, CSV) is not translated.
"""

from __future__ import annotations

# Only the standard library's cheapest modules at the top: `chatcrm --help`, `chatcrm mine` and a console pipe
# start as whole processes many times a day, and each command imports what it uses (SQLAlchemy, the SDKs,
# the handlers) in its own function. tests/test_startup.py keeps it so.
import argparse
import os
import sys
from collections.abc import Callable, Sequence  # a cheap alias of the always-loaded _collections_abc, for annotations


def _(message: str, **params: object) -> str:
    """``crm_core.i18n._`` once the CLI speaks a language other than English (``main`` imports it then,
    from CHATCRM_LANGUAGE); until then the English itself, so ``chatcrm --help`` and ``chatcrm mine`` on a
    file import no more than before. A command's own ``from crm_core.i18n import _`` is the same function."""
    translate = sys.modules.get("crm_core.i18n")
    if translate is not None:
        return translate._(message, **params)  # type: ignore[no-any-return]
    return message.format(**params) if params else message


def _log_level(args: argparse.Namespace) -> str:
    """The configured log level. A command that uses the CRM's settings reads and checks all of them first, so a
    bad setting fails before any work; one that declares ``uses_settings=False`` (``mine``) reads only
    CHATCRM_LOG_LEVEL, since checking the settings loads the models and with them SQLAlchemy."""
    if not getattr(args, "uses_settings", True):
        return os.environ.get("CHATCRM_LOG_LEVEL", "INFO").upper()
    from bot.settings import Settings

    return Settings.from_env().log_level


def _configure_logging(log_level: str = "INFO") -> None:
    import logging

    level = getattr(logging, log_level, logging.INFO)
    handler: logging.Handler
    log_file = os.environ.get("CHATCRM_LOG_FILE")
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every migration step at INFO; only its warnings matter to a user.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    # APScheduler logs every tick of the scheduler at INFO.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))


def _app(args: argparse.Namespace, *, migrate: bool | None = None):
    from bot.bootstrap import build_app
    from bot.settings import Settings

    # Without CHATCRM_SECRET_KEY on PostgreSQL, build_app refuses in one line (crm_core.secret_key).
    return build_app(Settings.from_env(), migrate=migrate)


def cmd_console(args: argparse.Namespace) -> int:
    from bot.adapters.console.adapter import run_console

    app = _app(args)
    try:
        return run_console(app, as_user=args.as_user)
    finally:
        app.close()


def cmd_run(args: argparse.Namespace) -> int:
    """What ``make run`` starts: the configured platforms (as the worker), or the console on demo data
    with the scheduler and outbox sender running beside it (reminders pop up in the console)."""
    from bot.platforms import configured_platforms

    app = _app(args)
    try:
        if configured_platforms(app):
            return _run_worker(app)
        from bot.adapters.console.adapter import run_console

        seed_demo_on_first_start(app)
        with _BackgroundWorker(app):
            return run_console(app, as_user=args.as_user)
    finally:
        app.close()


def seed_demo_on_first_start(app, customers: int = 400) -> None:  # app: bot.bootstrap.App (not imported: start-up)
    """The embedded database's first ``chatcrm run`` seeds the demo data set, in CHATCRM_LANGUAGE:
    with zh the Chinese demo company, so a Chinese team's first session reads Chinese data too."""
    from crm_core import demo
    from crm_core.i18n import _

    language = app.settings.language
    with app.uow(demo.DEMO_ACTOR) as uow:
        if app.settings.is_sqlite and not demo.is_seeded(uow, language):
            print(_("Seeding the demo data set (first start only)…"), file=sys.stderr)
            print(demo.seed(uow, customers=customers, language=language).describe(), file=sys.stderr)
            print(demo.prime(uow), file=sys.stderr)


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.platforms import web_mounts
    from bot.web import build_web_app

    app = _app(args)
    try:
        mounts = web_mounts(app)
        plugin_routes = app.plugins.routes(app)
        # The built-in REST API is always there; on its own it is not yet a reason to serve (tokens are
        # made in chat), so without a platform or another plugin's routes web still says what is missing.
        if not mounts and all(str(getattr(route, "path", "")).startswith("/api/") for route in plugin_routes):
            print(
                "chatcrm web: "
                + _(
                    "no platform is configured. Set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (Slack) "
                    "and/or TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET (Telegram); see the README."
                ),
                file=sys.stderr,
            )
            return 2
        web = build_web_app(app, mounts, plugin_routes, freeze_heap=True)
        uvicorn.run(web, host=args.host, port=args.port, log_config=None)
        return 0
    finally:
        app.close()


def cmd_worker(args: argparse.Namespace) -> int:
    app = _app(args)
    try:
        return _run_worker(app)
    finally:
        app.close()


def _run_worker(app) -> int:
    import asyncio

    from bot.platforms import configured_platforms, worker_services
    from bot.worker import run_services

    if not configured_platforms(app):
        print(
            "chatcrm worker: "
            + _(
                "no chat platform is configured (SLACK_BOT_TOKEN / TELEGRAM_BOT_TOKEN); running the "
                "scheduler and the outbox sender with console delivery: reminders and digests for console users "
                "are printed here."
            ),
            file=sys.stderr,
        )
    asyncio.run(run_services(worker_services(app)))
    return 0


class _BackgroundWorker:
    """The worker's scheduler and outbox sender in a thread beside the console (``make run``),
    so a follow-up set in the console pops up in it when due. A class rather than a
    ``contextlib.contextmanager`` so this module imports nothing beyond argparse, os and sys."""

    def __init__(self, app) -> None:
        import threading

        self.app = app
        self.ready: dict[str, object] = {}
        self.thread = threading.Thread(target=self._serve, name="chatcrm-worker", daemon=True)

    def __enter__(self) -> None:
        import logging

        from bot.platforms import worker_services
        from bot.worker import run_services

        self.services, self.run_services = worker_services, run_services
        # Its start/stop and per-job lines would interleave with the console's own output.
        for name in ("chatcrm.worker", "chatcrm.scheduler", "chatcrm.outbox", "chatcrm.leader"):
            logging.getLogger(name).setLevel(max(logging.getLogger().level, logging.WARNING))
        self.thread.start()

    def _serve(self) -> None:
        import asyncio
        import logging

        async def main() -> None:
            self.ready["loop"], self.ready["stop"] = asyncio.get_running_loop(), asyncio.Event()
            await self.run_services(self.services(self.app), self.ready["stop"])  # type: ignore[arg-type]

        try:
            asyncio.run(main())
        except Exception:  # noqa: BLE001 - the console keeps working without reminders
            logging.getLogger("chatcrm").exception("the background worker stopped")

    def __exit__(self, *exc_info: object) -> None:
        loop, stop = self.ready.get("loop"), self.ready.get("stop")
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)  # type: ignore[attr-defined]
        self.thread.join(timeout=15)


def cmd_db(args: argparse.Namespace) -> int:
    from bot.settings import Settings
    from crm_core import db

    settings = Settings.from_env()
    engine = db.create_engine(settings.database_url)
    try:
        db.check_connection(engine)
        if args.action == "upgrade":
            _give_field_keys(engine, settings)
            db.upgrade(engine)
            status = db.schema_status(engine)
            print(
                _(
                    "Database {url} is at revision {revision} (head).",
                    url=db.mask_url(settings.database_url),
                    revision=status.current,
                )
            )
        else:
            status = db.schema_status(engine)
            url = db.mask_url(settings.database_url)
            if status.current is None:
                said = _(
                    "Database {url}: no revision yet (an empty database), behind: run `chatcrm db upgrade` to reach {head}.",
                    url=url,
                    head=status.head,
                )
            elif status.up_to_date:
                said = _("Database {url}: revision {revision}, up to date.", url=url, revision=status.current)
            else:
                said = _(
                    "Database {url}: revision {revision}, behind: run `chatcrm db upgrade` to reach {head}.",
                    url=url,
                    revision=status.current,
                    head=status.head,
                )
            print(said)
            return 0 if status.up_to_date else 1
    finally:
        engine.dispose()
    return 0


def _give_field_keys(engine, settings) -> None:
    """Migrations that encrypt stored data (0023) need the key; without one (PostgreSQL, no
    CHATCRM_SECRET_KEY) they still run on a database holding no personal data."""
    from crm_core import field_crypto
    from crm_core.secret_key import SecretKeyError, secret_keys

    try:
        keys = secret_keys(settings.secret_key, settings.database_url, create=True)
    except SecretKeyError:
        return
    if keys.notice:
        print(keys.notice, file=sys.stderr)
    field_crypto.use_keys(engine, field_crypto.FieldKeys(keys.keys))


def cmd_demo(args: argparse.Namespace) -> int:
    from crm_core import demo

    app = _app(args)
    try:
        with app.uow(demo.DEMO_ACTOR) as uow:
            summary = demo.seed(uow, customers=args.customers, language=args.lang)
            print(summary.describe())
            if summary.created:
                print(demo.prime(uow))
    finally:
        app.close()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """``chatcrm import KIND SOURCE``: a CSV or .xlsx file, or ``--from-db URL --query SQL``; see crm_core.importing."""
    from bot.progress import ProgressBar
    from bot.settings import Settings
    from crm_core import i18n
    from crm_core.actor import Actor
    from crm_core.i18n import _
    from crm_core.importing import mapping_file
    from crm_core.importing.run import error_report_path, import_table
    from crm_core.importing.sources import open_table
    from crm_core.importing.table import ImportFailed

    # Problems are told in the company's language (CHATCRM_LANGUAGE), those found before the app is built too.
    i18n.set_default_language(Settings.from_env().language)
    where = args.source or _("the query")
    if args.source and not os.path.isfile(args.source):
        print("chatcrm import: " + _("no such file: {path}", path=args.source), file=sys.stderr)
        return 1
    try:
        loaded = mapping_file.load(args.mapping) if args.mapping else mapping_file.MappingFile()
        mapping = {**loaded.columns, **mapping_file.parse_pairs(args.map or [])}
        option = {**loaded.options, **{k: v for k in mapping_file.OPTIONS if (v := getattr(args, k, None))}}
        if args.source is None and args.from_db is None:
            raise ImportFailed(_('give a file (CSV or .xlsx), or --from-db URL --query "SELECT …"'))
        table = open_table(
            args.source,
            sep=option.get("sep"),
            sheet=option.get("sheet"),
            from_db=args.from_db,
            query=option.get("query"),
        )
    except ImportFailed as exc:
        print(
            "chatcrm import: " + _("{source}: {problem}; nothing was imported.", source=where, problem=exc),
            file=sys.stderr,
        )
        return 1
    app = _app(args)
    bar = ProgressBar(_("Importing {name}", name=table.name))
    try:
        with app.uow(Actor(user_id=None, name=f"import {args.kind}", platform="cli")) as uow:
            currency = option.get("currency") or app.settings.currency
            report = import_table(
                uow, args.kind, table, mapping, dry_run=args.dry_run, progress=bar, options={"currency": currency}
            )
    except ImportFailed as exc:
        bar.close()
        print(
            "chatcrm import: " + _("{source}: {problem}; nothing was imported.", source=where, problem=exc),
            file=sys.stderr,
        )
        return 1
    finally:
        app.close()
    bar.close()
    if report.problems:
        report.write_errors(error_report_path(args.source, args.kind))
    print(report.summary())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``chatcrm export KIND [--filter F] [--format F] [--out FILE]``; see crm_core.exporting."""
    from crm_core.actor import Actor
    from crm_core.exporting.lists import ExportFailed
    from crm_core.exporting.run import export, pick_format
    from crm_core.i18n import format_number, ngettext

    fmt = pick_format(args.format, args.out)
    app = _app(args)
    try:
        with app.uow(Actor(user_id=None, name=f"export {args.kind}", platform="cli")) as uow:
            count = export(uow, args.kind, fmt=fmt, out=args.out, customer_filter=args.filter)
    except ExportFailed as exc:
        print(f"chatcrm export: {exc}", file=sys.stderr)
        return 1
    finally:
        app.close()
    if args.out:
        words = ngettext(
            "Exported {count} {kind} row to {file} ({format}).",
            "Exported {count} {kind} rows to {file} ({format}).",
            count,
            count=format_number(count),
            kind=args.kind,
            file=args.out,
            format=fmt,
        )
        print(words, file=sys.stderr)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """``chatcrm events tail``: the latest domain events, one per line; ``--follow`` keeps printing new ones."""
    import json
    import time

    from bot.bootstrap import open_database
    from bot.settings import Settings
    from crm_core import db, events

    # The events' payloads are encrypted: the engine needs its key (open_database gives it).
    engine, _keys = open_database(Settings.from_env())
    try:
        factory = db.session_factory(engine)

        def show(batch: list[events.Event]) -> None:
            for event in batch:
                actor = f"{event.actor.name}@{event.actor.platform}"
                payload = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
                when = event.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                print(
                    f"{event.id} {when} {event.type} {event.entity_type}:{event.entity_id} {actor} {payload}",
                    flush=True,
                )

        with factory() as session:
            latest = events.recent(session, args.limit, args.type)
        show(latest)
        # Nothing shown means no event of that type exists yet: following from 0 shows only new ones.
        last_id = latest[-1].id if latest else 0
        while args.follow:
            time.sleep(1.0)
            with factory() as session:
                batch = events.after(session, last_id, 500, args.type)
            show(batch)
            if batch:
                last_id = batch[-1].id
    finally:
        engine.dispose()
    return 0


# -- backup and restore -------------------------------------------------------------------------


def cmd_backup(args: argparse.Namespace) -> int:
    """``chatcrm backup [--out FILE]``: an encrypted snapshot of the whole database, taken while it runs."""
    from bot.progress import ProgressBar
    from bot.settings import Settings
    from crm_core import db
    from crm_core.backup import backup_to_file
    from crm_core.backup.retention import backup_name
    from crm_core.clock import utcnow
    from crm_core.secret_key import secret_keys

    settings = Settings.from_env()
    keys = secret_keys(settings.secret_key, settings.database_url, create=True)
    if keys.notice:
        print(keys.notice, file=sys.stderr)
    out = args.out or os.path.join(settings.backup_dir or ".", backup_name(utcnow()))
    engine = db.create_engine(settings.database_url)
    bar = ProgressBar(_("Backing up"))
    try:
        db.check_connection(engine)
        summary = backup_to_file(engine, out, keys.current, bar.per_table)
    except OSError as exc:
        bar.close()
        problem = _("cannot write {path}: {reason}", path=out, reason=exc.strerror or exc)
        print(f"chatcrm backup: {problem}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    bar.close()
    print(summary.describe())
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """``chatcrm restore FILE``: load a backup into the (empty) database DATABASE_URL names;
    ``--check`` only reads and verifies the file."""
    from bot.progress import ProgressBar
    from bot.settings import Settings
    from crm_core import backup, db
    from crm_core.secret_key import secret_keys

    if not os.path.isfile(args.file):
        print("chatcrm restore: " + _("no such file: {path}", path=args.file), file=sys.stderr)
        return 1
    settings = Settings.from_env()
    keys = secret_keys(settings.secret_key, settings.database_url, create=False)
    with open(args.file, "rb") as source:
        if args.check:
            manifest = backup.check_file(source, keys.keys)
            print(backup.describe_check(args.file, manifest))
            return 0
        engine = db.create_engine(settings.database_url)
        bar = ProgressBar(_("Restoring {file}", file=os.path.basename(args.file)))
        try:
            db.check_connection(engine)
            report = backup.restore(engine, source, keys.keys, bar.per_table)
        finally:
            bar.close()
            engine.dispose()
    print(report.describe())
    return 0


def _add_backup_commands(sub) -> None:
    backup = sub.add_parser("backup", help=_("write an encrypted backup of the whole database (while it runs)"))
    backup.add_argument(
        "--out",
        metavar="FILE",
        help=_("where to write it (default: chatcrm-<time>.backup in CHATCRM_BACKUP_DIR or here)"),
    )
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help=_("load a backup into an empty database (SQLite or PostgreSQL)"))
    restore.add_argument("file", help=_("the backup file"))
    restore.add_argument("--check", action="store_true", help=_("only decrypt and verify the file; touch no database"))
    restore.set_defaults(func=cmd_restore)


# -- encryption keys -----------------------------------------------------------------------------


def cmd_keys(args: argparse.Namespace) -> int:
    """``chatcrm keys status|rotate``: which keys the personal data are under; move them to the first."""
    from bot.bootstrap import open_database
    from bot.settings import Settings
    from crm_core import key_rotation
    from crm_core.field_crypto import FieldKeys

    # open_database refuses when a key the data were written with is missing from CHATCRM_SECRET_KEY.
    engine, keys = open_database(Settings.from_env())
    try:
        current = FieldKeys(keys.keys).ids
        if args.action == "rotate":
            report = key_rotation.rotate(engine, keys.keys, batch=args.batch)
            print(report.describe())
            return 0
        print(key_rotation.describe_status(current, key_rotation.status(engine)))
        return 0
    finally:
        engine.dispose()


def _add_keys_commands(sub) -> None:
    keys = sub.add_parser("keys", help=_("the keys personal data are encrypted with: status, or rotate to the first"))
    keys.add_argument(
        "action",
        choices=("status", "rotate"),
        help=_("status: how many values are under which key; rotate: re-encrypt them under the first"),
    )
    keys.add_argument(
        "--batch", type=_positive, default=1000, help=_("rows per transaction when rotating (default 1000)")
    )
    keys.set_defaults(func=cmd_keys)


def _typed(raw: str, parse: Callable[[str], float], fits: Callable[[float], bool], problem: str) -> float:
    """``raw`` read by ``parse`` when it reads and ``fits``; else argparse's one-line error ``problem``."""
    try:
        value = parse(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(problem) from None
    if not fits(value):
        raise argparse.ArgumentTypeError(problem)
    return value


def _support(raw: str) -> float | int:
    """A fraction of baskets ("0.001") or an absolute count ("10")."""
    is_fraction = any(ch in raw for ch in ".eE")
    return _typed(
        raw,
        float if is_fraction else int,
        (lambda value: 0 < value <= 1) if is_fraction else (lambda value: value >= 1),
        _("{value} is not a support (a fraction like 0.001 or a count like 10)", value=repr(raw)),
    )


def _confidence(raw: str) -> float:
    """A fraction from 0 to 1 ("0.3")."""
    problem = _("{value} is not a confidence (a fraction from 0 to 1, like 0.3)", value=repr(raw))
    return _typed(raw, float, lambda value: 0 <= value <= 1, problem)


def _positive(raw: str) -> int:
    """A whole number of 1 or more."""
    problem = _("{value} is not a whole number of 1 or more", value=repr(raw))
    return int(_typed(raw, int, lambda value: value >= 1, problem))


def cmd_plugins(args: argparse.Namespace) -> int:
    """List every plugin (built-in, installed, CHATCRM_PLUGINS): name, version, source and hooks."""
    from bot.bootstrap import load_plugins
    from bot.settings import Settings

    loaded = load_plugins(Settings.from_env())
    if args.format == "json":
        import json

        print(json.dumps([info.__dict__ for info in loaded.infos], indent=2, default=list))
        return 0
    from crm_core.terminal import pad

    # Where each came from, for people (--format json keeps the codes).
    sources = {"built-in": _("built-in"), "entry point": _("installed"), "given": _("given")}
    width = max(len(info.name) for info in loaded.infos)
    for info in loaded.infos:
        source = pad(sources.get(info.source, info.source), 15)
        print(f"{info.name:<{width}}  {info.version:<8}  {source}  {', '.join(info.hooks) or '-'}")
    counts = _(
        "{plugins} plugins: {commands} commands, {platforms} platforms ({names}), {jobs} jobs, "
        "{kinds} deferred outbox kinds",
        plugins=len(loaded.infos),
        commands=sum(len(g.commands) for g in loaded.command_groups),
        platforms=len(loaded.platforms),
        names=", ".join(loaded.platforms),
        jobs=len(loaded.jobs),
        kinds=len(loaded.outbox_kinds),
    )
    print(counts, file=sys.stderr)
    return 0


def cmd_mine(args: argparse.Namespace) -> int:
    """Mine rules from a basket file (no database: analysts compare it with other tools), or without
    ``--baskets`` the CRM's orders, like /mine: ``--as-of DAY`` and ``--window 365d``."""
    if args.baskets is None:
        _configure_logging(_log_level(args))
        return _mine_database(args)
    if args.as_of or args.window:
        print("chatcrm mine: " + _("--as-of and --window mine the database; leave out --baskets"), file=sys.stderr)
        return 2
    if args.min_support is None or args.min_confidence is None:
        print("chatcrm mine: " + _("a basket file needs --min-support and --min-confidence"), file=sys.stderr)
        return 2
    from crm_core.mining.errors import NoBaskets

    try:
        if args.engine != "spark":
            # The C accelerator end to end, without numpy's import (None where it is not built).
            from crm_core.mining.lean import mine_file_rules

            found = mine_file_rules(args.baskets, args.min_support, args.min_confidence, args.max_len, sep=args.sep)
            if found is not None:
                print(_rules_text(found, args.format))
                return 0
        _configure_logging(_log_level(args))
        from crm_core.mining import AssociationRules, read_encoded_baskets

        model: AssociationRules
        if args.engine == "spark":
            from crm_core.mining import read_baskets
            from crm_core.mining.spark_engine import SparkAssociationRules

            model = SparkAssociationRules(
                args.min_support, args.min_confidence, max_len=args.max_len, master=os.environ.get("SPARK_MASTER")
            ).fit(read_baskets(args.baskets, sep=args.sep))
        else:
            baskets = read_encoded_baskets(args.baskets, sep=args.sep)
            model = AssociationRules(args.min_support, args.min_confidence, max_len=args.max_len).fit(baskets)
    except FileNotFoundError:
        print("chatcrm mine: " + _("no such file: {path}", path=args.baskets), file=sys.stderr)
        return 1
    except NoBaskets:
        print("chatcrm mine: " + _("no baskets: {path} holds none to mine", path=args.baskets), file=sys.stderr)
        return 1
    except (ValueError, TypeError, ImportError, MemoryError) as exc:
        # ImportError: the Spark engine without its extra; MemoryError: the local engine's refusal.
        print(f"chatcrm mine: {exc}", file=sys.stderr)
        return 1
    rules = [rule for rule in model.rules_ if rule.antecedent]
    print(_rules_text(rules, args.format))
    return 0


def _rules_text(rules, fmt: str) -> str:
    """The rules as ``--format`` asks; the table (for people) with its headings in the CLI's language, CSV
    and JSON (for programs) as they are."""
    from crm_core.mining.formatting import format_rules

    if fmt != "table":
        return format_rules(rules, fmt)
    headings = (
        _("antecedent"),
        _("consequent"),
        _("support"),
        _("confidence"),
        _("lift"),
        _("count"),
    )
    return format_rules(rules, fmt, headings=headings, empty=_("(no rules)"))


def _mine_database(args: argparse.Namespace) -> int:
    import dataclasses

    from crm_core import history
    from crm_core.actor import Actor
    from crm_core.i18n import format_number
    from crm_core.services import market_basket

    app = _app(args)
    try:
        settings = market_basket.MiningSettings.from_env(app.settings.extra)
        overrides = {
            "min_support": args.min_support,
            "min_confidence": args.min_confidence,
            "max_len": args.max_len,
            "engine": args.engine,
        }
        if args.window:
            overrides["window_days"] = history.parse_window(args.window, "--window")
        settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        as_of = history.parse_day(args.as_of, "--as-of") if args.as_of else None
        try:
            with app.uow(Actor(user_id=None, name="mine", platform="cli")) as uow:
                run = market_basket.run_mining(uow, settings, trigger="cli", as_of=as_of)
                print(
                    _(
                        "Mining run #{run_id}: mined {orders} orders of {window}: {itemsets} frequent itemsets, "
                        "{rules} rules in {seconds} s.",
                        run_id=run.id,
                        orders=format_number(run.n_baskets),
                        window=market_basket.run_window(run),
                        itemsets=format_number(run.n_itemsets),
                        rules=format_number(run.n_rules),
                        seconds=format_number(run.duration_ms / 1000, 2),
                    )
                )
        except (ImportError, MemoryError) as exc:
            # The Spark engine without its extra, or the local engine refusing a history too big for
            # this machine: one line, and the unit of work rolled back (no run recorded).
            print(f"chatcrm mine: {exc}", file=sys.stderr)
            return 1
    finally:
        app.close()
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """``chatcrm model train [--as-of DAY]``: what /model train does, from a terminal or cron."""
    from bot.handlers.predictions import model_name
    from crm_core import history
    from crm_core.actor import Actor
    from crm_core.i18n import format_number
    from crm_core.predictions import run_notes
    from crm_core.predictions.scores import refresh_scores

    as_of = history.parse_day(args.as_of, "--as-of") if args.as_of else None
    app = _app(args)
    try:
        with app.uow(Actor(user_id=None, name="model train", platform="cli")) as uow:
            run = refresh_scores(uow, as_of=as_of)
            # The model's name and the run's note as /model shows them, in the CLI's language.
            algorithm = model_name(run.algorithm) if run.algorithm else _("not trained")
            if run.roc_auc is not None:
                auc = _("holdout ROC AUC {auc}", auc=format_number(run.roc_auc, 3))
            else:
                auc = _("no AUC")
            print(
                _(
                    "Churn model run #{run_id} ({algorithm}, {auc}): {note}",
                    run_id=run.id,
                    algorithm=algorithm,
                    auc=auc,
                    note=run_notes.describe(run),
                )
            )
    finally:
        app.close()
    return 0


def _add_import_parser(sub) -> None:
    importer = sub.add_parser(
        "import", help=_("import customers, companies, deals, orders or products from CSV, .xlsx or another database")
    )
    importer.add_argument(
        "kind", choices=["customers", "companies", "deals", "orders", "products"], help=_("what the file holds")
    )
    importer.add_argument("source", nargs="?", help=_("a CSV or .xlsx file (or use --from-db)"))
    importer.add_argument("--sep", help=_("CSV delimiter (default: detected)"))
    importer.add_argument("--sheet", help=_("the .xlsx sheet to read (default: the first)"))
    importer.add_argument(
        "--from-db", metavar="URL", help=_("read from another database (SQLAlchemy URL) with --query")
    )
    importer.add_argument("--query", help=_('with --from-db: "SELECT …"'))
    importer.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN",
        help=_("take a CRM field from a differently named column (repeatable)"),
    )
    importer.add_argument(
        "--mapping", metavar="FILE", help=_('a TOML (or YAML) mapping file: [columns] field = "Column"')
    )
    importer.add_argument("--dry-run", action="store_true", help=_("check every row, write nothing"))
    importer.add_argument("--currency", help=_("currency of prices and amounts without one (default CHATCRM_CURRENCY)"))
    importer.set_defaults(func=cmd_import)


def _add_export_parser(sub) -> None:
    exporter = sub.add_parser(
        "export", help=_("export customers, deals, tickets, orders, interactions or the audit log")
    )
    exporter.add_argument(
        "kind", choices=["customers", "deals", "tickets", "orders", "interactions", "audit"], help=_("what to export")
    )
    exporter.add_argument(
        "--filter", help=_('a segment filter, e.g. "country=DE tag=vip" (customers and their records)')
    )
    exporter.add_argument(
        "--format", choices=["csv", "xlsx", "json", "jsonl", "parquet"], help=_("default: from --out, else csv")
    )
    exporter.add_argument("--out", metavar="FILE", help=_("default: standard output (csv, json, jsonl)"))
    exporter.set_defaults(func=cmd_export)


def _terminal_columns() -> int:
    """The terminal's width as shutil.get_terminal_size() finds it ($COLUMNS, then stdout's size, else 80)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told the terminal width: argparse builds one per argument it adds, and the
    default asks shutil, whose import (with the compression modules) cost 3 ms of every start-up."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position, _terminal_columns() - 2 if width is None else width)


class _ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose subcommands' parsers (of its class) use _HelpFormatter too."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


class _Unbuilt:
    """Stands in for the parser of a subcommand the command line does not run: takes its arguments, builds nothing."""

    def __getattr__(self, name: str):
        return self._ignore

    def _ignore(self, *args: object, **kwargs: object) -> _Unbuilt:
        return self


class _Subcommands:
    """The subparsers action, building only the parser of the subcommand ``only`` (all of them when None).

    argparse looks up its own strings in gettext's catalogs for every parser it makes ("options", "show this
    help message and exit"), with a locale lookup and a few stat calls each time; the other subcommands'
    parsers cost `chatcrm mine` on Groceries 13M of its 260M instructions."""

    def __init__(self, action, only: str | None) -> None:
        self.action, self.only, self.built = action, only, False

    def add_parser(self, name: str, **kwargs: object):
        if self.only is not None and name != self.only:
            # Still a choice, so that a usage line (`chatcrm mine --bogus`) lists every subcommand as before.
            self.action.choices[name] = unbuilt = _Unbuilt()
            return unbuilt
        self.built = True
        return self.action.add_parser(name, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``chatcrm`` parser; with ``command`` (the command line's first word), only that subcommand's."""
    parser = _ArgumentParser(prog="chatcrm", description=_("A CRM that lives in your team's chat."))
    sub = _Subcommands(parser.add_subparsers(dest="command", required=True), command)

    run = sub.add_parser("run", help=_("start what is configured (the console on demo data by default)"))
    run.add_argument("--as", dest="as_user", help=_("act as this CRM user (name, email or #id)"))
    run.set_defaults(func=cmd_run)

    console = sub.add_parser("console", help=_("type commands on the terminal, or pipe them in"))
    console.add_argument("--as", dest="as_user", help=_("act as this CRM user (name, email or #id)"))
    console.set_defaults(func=cmd_console)

    web = sub.add_parser("web", help=_("serve the Slack and Telegram webhooks over HTTP"))
    web.add_argument("--host", default="0.0.0.0", help=_("the address to listen on (default 0.0.0.0: every one)"))
    web.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", "8000")), help=_("the port (default $PORT, else 8000)")
    )
    web.set_defaults(func=cmd_web)

    worker = sub.add_parser("worker", help=_("run the scheduler, the outbox sender and Socket Mode / polling"))
    worker.set_defaults(func=cmd_worker)

    database = sub.add_parser("db", help=_("database schema: upgrade or status"))
    database.add_argument(
        "action",
        choices=["upgrade", "status"],
        help=_("upgrade: bring the schema up to date; status: show its revision"),
    )
    database.set_defaults(func=cmd_db)

    _add_import_parser(sub)
    _add_export_parser(sub)

    miner = sub.add_parser(
        "mine", help=_("mine association rules from a file of baskets (one per line), or from the CRM's orders")
    )
    miner.add_argument("--baskets", help=_("file with one basket per line (without it: the database's orders)"))
    miner.add_argument("--sep", help=_("item separator (default: comma if the file has commas, else whitespace)"))
    miner.add_argument("--min-support", type=_support, help=_("fraction (0.001) or count (10)"))
    miner.add_argument("--min-confidence", type=_confidence, help=_("fraction from 0 to 1 (0.3)"))
    miner.add_argument(
        "--as-of", help=_("database: the last day to mine, e.g. 2011-12-09 (default: now or newest order)")
    )
    miner.add_argument(
        "--window", help=_("database: how many days back, e.g. 365d (default CHATCRM_MINING_WINDOW_DAYS)")
    )
    miner.add_argument("--max-len", type=_positive, help=_("longest itemset (default: no limit)"))
    miner.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help=_("table (default) for reading; csv and json for programs"),
    )
    miner.add_argument(
        "--engine",
        choices=["local", "spark"],
        help=_(
            "local: this process; spark: Apache Spark at $SPARK_MASTER (default local[*]; needs chatcrm[spark]); "
            "database default: CHATCRM_MINING_ENGINE, else local"
        ),
    )
    # Mining a file needs no database and no CRM settings (see _log_level).
    miner.set_defaults(func=cmd_mine, uses_settings=False, configures_logging=True)

    model = sub.add_parser("model", help=_("the churn model: train it and rescore every customer"))
    model_sub = model.add_subparsers(dest="action", required=True)
    train = model_sub.add_parser("train", help=_("train, evaluate on a holdout, publish if good enough, rescore"))
    train.add_argument("--as-of", help=_("the history's last day, e.g. 2011-12-09 (default: now or newest order)"))
    train.set_defaults(func=cmd_model)

    plugins = sub.add_parser("plugins", help=_("list the loaded plugins, their versions and the hooks they implement"))
    plugins.add_argument(
        "--format", choices=["table", "json"], default="table", help=_("table (default) for reading; json for programs")
    )
    plugins.set_defaults(func=cmd_plugins)

    events_parser = sub.add_parser("events", help=_("domain events: tail shows the latest"))
    events_parser.add_argument("action", choices=["tail"], help=_("tail: the latest events, one per line"))
    events_parser.add_argument("--limit", type=int, default=20, help=_("how many of the latest (default 20)"))
    events_parser.add_argument(
        "--type", metavar="PREFIX", help=_("only types starting with this, e.g. deal or deal.won")
    )
    events_parser.add_argument("--follow", action="store_true", help=_("keep printing new events until Ctrl-C"))
    events_parser.set_defaults(func=cmd_events)

    _add_backup_commands(sub)
    _add_keys_commands(sub)

    seed = sub.add_parser("demo", help=_("add the demo data set (idempotent)"))
    seed.add_argument("--customers", type=int, default=400, help=_("how many customers (default 400)"))
    seed.add_argument(
        "--lang",
        choices=["en", "zh"],
        default="en",
        help=_("the demo company's language: en (default) or zh, a Chinese company with Chinese customers and data"),
    )
    seed.set_defaults(func=cmd_demo)
    if command is not None and not sub.built:
        return build_parser()  # not a subcommand: the whole parser says which there are
    return parser


def _speak_the_configured_language() -> None:
    """Speak CHATCRM_LANGUAGE from here on: help, progress, summaries and errors, argparse's own words too.
    English needs nothing (and imports nothing); a value that is no language is left for the settings
    to refuse in one line (commands that read no settings speak English then)."""
    wanted = (os.environ.get("CHATCRM_LANGUAGE") or "").strip()
    if wanted.lower() in ("", "en"):
        # Called in-process again (tests), after another language: English again.
        spoken = sys.modules.get("bot.cli_language")
        if spoken is not None:
            spoken.speak("en")
        return
    from bot.cli_language import speak

    speak(wanted)


def main(argv: Sequence[str] | None = None) -> int:
    _speak_the_configured_language()
    words = sys.argv[1:] if argv is None else list(argv)
    command = words[0] if words and not words[0].startswith("-") else None
    args = build_parser(command).parse_args(words)
    # The base of DatabaseUnavailable, SchemaBehind and SettingsError, from a module that imports nothing.
    from crm_core.errors import CrmError, SetupError

    try:
        # A command that logs nothing on its fast path (mine on a file) configures logging itself when
        # it needs to: importing logging is 6 ms of a start-up that analysts' scripts repeat.
        if getattr(args, "configures_logging", False) is False:
            _configure_logging(_log_level(args))
        return args.func(args)
    except SetupError as exc:
        print(f"chatcrm: {exc}", file=sys.stderr)
        return 1
    except CrmError as exc:
        # A user error from the core (console --as ghost: no such user) is one line, not a traceback.
        print(f"chatcrm: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `chatcrm mine … | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
