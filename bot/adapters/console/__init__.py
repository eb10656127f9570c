"""The console adapter: chatcrm on a terminal, or one command per line from a pipe."""
