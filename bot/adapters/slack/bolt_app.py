"""The bolt app: one route per top-level command (and ``/crm``), the chatcrm buttons, the modal
submission and the events we subscribe to. No business logic here: each route keeps the delivery
in the inbox (``SlackRuntime.receive``, committed), then acknowledges, then has the runtime process
it in the background, where ``app.dispatcher.handle`` runs it. A delivery that could not be kept
(the database is away) is not acknowledged: the error makes the answer a 500, so Slack retries an
event and shows the person that a command failed. A modal submission is answered in its ack
(``SlackRuntime.submit_form``).

The same bolt app serves HTTP (``http.SlackWebMount``) and Socket Mode (``socket_mode``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.adapters.slack.blocks import ACTION_ID
from bot.adapters.slack.inbound import ACTION, COMMAND, EVENT
from bot.adapters.slack.modals import CALLBACK_ID
from bot.adapters.slack.runtime import Ack, SlackRuntime
from bot.router import UMBRELLA

log = logging.getLogger("chatcrm.slack")


def slash_commands(runtime: SlackRuntime) -> list[str]:
    """The slash commands chatcrm answers: every top-level router command, and /crm for all of them."""
    return [f"/{UMBRELLA}"] + [f"/{name}" for name in runtime.app.router.top_level_names()]


def build_bolt_app(runtime: SlackRuntime, *, signing_secret: str | None) -> AsyncApp:
    """The bolt app on the runtime's Web API client. Without a signing secret (Socket Mode only)
    requests are not verified: bolt never receives HTTP requests then."""
    bolt = AsyncApp(
        client=runtime.client,
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        # Every listener below keeps the delivery, acknowledges and hands the work to a background task,
        # so it returns at once; bolt then answers Slack right away (without this, bolt polls for the ack
        # every 10 ms, and an event's ack would not wait for the delivery to be kept).
        process_before_response=True,
        logger=logging.getLogger("chatcrm.slack.bolt"),
    )

    async def on_command(ack: Ack, body: dict[str, Any]) -> None:
        claim = await runtime.receive(COMMAND, body)
        await ack()
        runtime.process_later(claim, f"command {body.get('command')}")

    async def on_button(ack: Ack, body: dict[str, Any]) -> None:
        claim = await runtime.receive(ACTION, body)
        await ack()
        runtime.process_later(claim, "button")

    async def on_submission(ack: Ack, body: dict[str, Any]) -> None:
        await runtime.submit_form(body, ack)

    async def on_event(body: dict[str, Any]) -> None:
        # bolt acknowledges events itself, and answers Slack once this returned (process_before_response).
        claim = await runtime.receive(EVENT, body)
        runtime.process_later(claim, f"event {body.get('event', {}).get('type')}")

    async def ignore(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        log.debug("slack payload ignored: %s", body.get("type"))

    for command in slash_commands(runtime):
        bolt.command(command)(on_command)
    # A command Slack knows but the router does not (an old manifest): the dispatcher answers with help.
    bolt.command(re.compile(r"^/"))(on_command)
    bolt.action(ACTION_ID)(on_button)
    bolt.action(re.compile(".*"))(ignore)
    bolt.view_submission(CALLBACK_ID)(on_submission)
    bolt.view(re.compile(".*"))(ignore)  # closed modals, views of other apps
    for event in ("app_home_opened", "app_mention", "message"):
        bolt.event(event)(on_event)
    # Anything else Slack sends gets its 200, so Slack does not retry it.
    bolt.event(re.compile(".*"))(ignore)
    return bolt
