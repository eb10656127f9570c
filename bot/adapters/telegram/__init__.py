"""The Telegram adapter (python-telegram-bot): staff use chatcrm's commands in Telegram, customers
write to the bot and land in support tickets. Imported only when TELEGRAM_BOT_TOKEN is set."""
