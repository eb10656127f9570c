"""The Slack adapter, on slack-bolt: slash commands, Block Kit cards, buttons, modals and App Home.

- ``inbound``: Slack payloads -> ``Request`` (translate in).
- ``blocks``, ``modals``, ``mrkdwn``: ``Reply`` -> Block Kit messages, Home views and modals (translate out).
- ``runtime``: the inbox before the ack, then dispatch off the event loop and answer through the
  outbox; also the platform's ``InboxProcessor`` (recovery of kept deliveries).
- ``bolt_app``: the bolt routes, thin (keep the delivery, ack, then hand to the runtime).
- ``http`` (``chatcrm web``: ``POST /slack/events``) and ``socket_mode`` (``chatcrm worker``): transports.
- ``sender``: ``SlackSender``, the outbox's way to post messages, answers (response_url or
  channel) and charts.
- ``manifest``: the Slack app manifest generated from the router.

Nothing here is imported unless Slack is configured (see bot.platforms).
"""
