"""Command handlers, one module per area. They see Requests and return Replies, never a platform SDK.

Each module is a built-in plugin: it contributes its ``CommandGroup`` (and any jobs) through the
hooks of bot.hookspecs, and is listed as a ``chatcrm`` entry point in pyproject.toml.
"""
