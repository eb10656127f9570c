"""Platform adapters: each translates platform payloads to Requests and Replies to the platform format."""
