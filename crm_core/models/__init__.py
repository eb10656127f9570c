"""All CRM models; importing this package registers every table on ``Base.metadata``."""

# Every session audits its flushes; registering here means no write path can forget it.
from crm_core import audit as _audit  # noqa: E402
from crm_core.models.api import ApiToken, IdempotentRequest
from crm_core.models.audit import AuditEntry
from crm_core.models.base import Base, UTCDateTime
from crm_core.models.campaigns import (
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignStatus,
    CampaignWatch,
    Consent,
    ConsentStatus,
    RecipientStatus,
    RunStatus,
    Segment,
)
from crm_core.models.catalog import Order, OrderKind, OrderLine, Product
from crm_core.models.chat_state import ButtonCommand, FormSession
from crm_core.models.custom_fields import CustomFieldDefinition, CustomFieldValue, FieldEntity, FieldType
from crm_core.models.customer_chats import CustomerChat
from crm_core.models.customers import (
    Company,
    Customer,
    CustomerKey,
    CustomerKind,
    CustomerRelationship,
    CustomerTag,
    RelationshipType,
)
from crm_core.models.deals import DEFAULT_PROBABILITY, PIPELINE, Deal, DealStage, DealStageChange
from crm_core.models.digests import DigestFrequency, DigestSubscription
from crm_core.models.encryption import EncryptionKey
from crm_core.models.events import DomainEvent, EventCursor, EventDeadLetter
from crm_core.models.followups import FollowUp, FollowUpStatus
from crm_core.models.imports import ChatImport
from crm_core.models.inbox import InboundEvent, InboxStatus
from crm_core.models.interactions import Direction, Interaction, InteractionKind
from crm_core.models.link_codes import LinkCode
from crm_core.models.mining import MinedRule, MiningRun, Recommendation, RecommendationStatus
from crm_core.models.outbox import BlockedRecipient, OutboxMessage, OutboxStatus
from crm_core.models.predictions import CustomerScore, ModelRun
from crm_core.models.scheduling import ScheduledJob, SchedulerLock
from crm_core.models.templates import TemplateOverride
from crm_core.models.tickets import ExternalThread, Ticket, TicketMessage, TicketPriority, TicketStatus
from crm_core.models.users import STAFF_ROLES, Identity, Role, User
from crm_core.models.webhooks import WebhookAttempt, WebhookEndpoint

_audit.install()

__all__ = [
    "EncryptionKey",
    "ChatImport",
    "ApiToken",
    "WebhookAttempt",
    "WebhookEndpoint",
    "IdempotentRequest",
    "AuditEntry",
    "Base",
    "UTCDateTime",
    "Order",
    "OrderKind",
    "OrderLine",
    "Product",
    "CustomFieldDefinition",
    "CustomFieldValue",
    "FieldEntity",
    "FieldType",
    "Company",
    "Customer",
    "CustomerKey",
    "CustomerKind",
    "CustomerRelationship",
    "CustomerTag",
    "RelationshipType",
    "DEFAULT_PROBABILITY",
    "PIPELINE",
    "Deal",
    "DealStage",
    "DealStageChange",
    "Direction",
    "Interaction",
    "InteractionKind",
    "ExternalThread",
    "Ticket",
    "TicketPriority",
    "TicketStatus",
    "Identity",
    "Role",
    "STAFF_ROLES",
    "User",
    "OutboxMessage",
    "OutboxStatus",
    "CustomerScore",
    "ModelRun",
    "MinedRule",
    "MiningRun",
    "Recommendation",
    "RecommendationStatus",
    "TicketMessage",
    "CustomerChat",
    "ButtonCommand",
    "FormSession",
    "LinkCode",
    "InboundEvent",
    "InboxStatus",
    "BlockedRecipient",
    "ScheduledJob",
    "SchedulerLock",
    "TemplateOverride",
    "Campaign",
    "CampaignRecipient",
    "CampaignRun",
    "CampaignStatus",
    "CampaignWatch",
    "Consent",
    "ConsentStatus",
    "RecipientStatus",
    "RunStatus",
    "Segment",
    "DigestFrequency",
    "DigestSubscription",
    "FollowUp",
    "FollowUpStatus",
    "DomainEvent",
    "EventCursor",
    "EventDeadLetter",
]
