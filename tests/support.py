"""Helpers for tests: users with roles, a console-style conversation with the real dispatcher, and
reading rows back."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from bot.adapters.console.render import render_text
from bot.bootstrap import App
from bot.messages import Origin, Reply, Request
from crm_core.models import Base, InboundEvent, InboxStatus, OutboxMessage, OutboxStatus, Role
from crm_core.services import users

# The CHATCRM_SECRET_KEY of the tests' apps and of the servers they spawn (tests.fakes.worker): one key,
# so a worker process opens what the test's app encrypted. PostgreSQL does not start without one.
TEST_SECRET_KEY = "a-test-secret-key-for-spawned-servers"


@dataclass
class Said:
    reply: Reply

    @property
    def text(self) -> str:
        return render_text(self.reply)


class Chat:
    def __init__(self, app: App):
        self.app = app

    def user(self, name: str, role: Role | None, platform: str = "console") -> Origin:
        """A CRM user with a role and a chat identity; returns the Origin to speak as them."""
        external_id = name.lower().replace(" ", ".")
        with self.app.uow() as uow:
            users.ensure_user(uow, users.PlatformId(platform, external_id), display_name=name, role=role)
        return Origin(
            platform=platform,
            user_external_id=external_id,
            conversation=f"dm-{external_id}",
            is_private=True,
            display_name=name,
        )

    def stranger(self, external_id: str = "U404", platform: str = "slack") -> Origin:
        return Origin(platform=platform, user_external_id=external_id, conversation="C1", display_name="Stranger")

    def say(self, origin: Origin, text: str, **request_fields) -> Said:
        return Said(self.app.dispatcher.handle(Request(origin=origin, text=text, **request_fields)))


def rows(app: App, model, *where) -> list:
    """Every row of ``model`` matching ``where``, in id order, read in a transaction of its own."""
    with app.uow() as uow:
        return list(uow.session.scalars(sa.select(model).where(*where).order_by(model.id)))


def count(app: App, model, *where) -> int:
    with app.uow() as uow:
        return uow.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def work_left(app: App) -> str | None:
    """What is left to do after a crash test, as "<n> deliveries, <m> messages" (inbox deliveries not
    done, outbox rows pending or being sent), or None when nothing is."""
    deliveries = count(app, InboundEvent, InboundEvent.status != InboxStatus.DONE)
    messages = count(app, OutboxMessage, OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
    return f"{deliveries} deliveries, {messages} messages" if deliveries or messages else None


def table_counts(app: App) -> dict[str, int]:
    """The number of rows of every table: equal before and after means nothing was written."""
    with app.uow() as uow:
        return {
            table.name: uow.session.scalar(sa.select(sa.func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }


def safety_net_records(records: list) -> list[str]:
    """What the web guard's safety net logged (an error a route let escape): hostile input must leave none."""
    return [r.getMessage() for r in records if r.name == "chatcrm.web" and r.levelno >= 40]
