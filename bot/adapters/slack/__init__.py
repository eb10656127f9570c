"""The Slack adapter, on slack-bolt: slash commands, Block Kit cards, buttons, modals and App Home.

- ``inbound``: Slack payloads -> ``Request`` (translate in).
- ``blocks``, ``modals``, ``mrkdwn``: ``Reply`` -> Block Kit messages, Home views and modals (translate out).
- ``runtime``: what happens after the ack: dispatch off the event loop, then deliver.
- ``bolt_app``: the bolt routes, thin (ack, then hand to the runtime).
- ``http`` (``chatcrm web``: ``POST /slack/events``) and ``socket_mode`` (``chatcrm worker``): transports.
- ``sender``: ``SlackSender``, the outbox's way to post messages and charts.
- ``manifest``: the Slack app manifest generated from the router.

Nothing here is imported unless Slack is configured (see bot.platforms).
"""
