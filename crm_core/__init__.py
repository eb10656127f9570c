"""chatcrm CRM core: models, database, unit of work and services. Imports nothing from ``bot``."""
