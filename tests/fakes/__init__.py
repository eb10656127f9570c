"""Stand-ins for what is outside chatcrm: a chat platform's HTTP API and a worker harness."""
