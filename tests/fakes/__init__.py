"""Local stand-ins for what is outside chatcrm: Slack and Telegram APIs, a generic chat platform, worker harnesses."""
