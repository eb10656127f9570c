"""CRM services: functions that take a unit of work and plain arguments, and hold no chat types."""
