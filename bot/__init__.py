"""chatcrm bot layer: platform-neutral messages, router, handlers and adapters."""
