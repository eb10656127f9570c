"""Which keys the encrypted personal columns were written with (crm_core.field_crypto).

One row per key id (derived from a CHATCRM_SECRET_KEY secret, revealing nothing of it). Start-up
refuses to run when a recorded id has no configured key; ``chatcrm keys rotate`` deletes the ids
it moved every value away from.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.field_crypto import KEY_ID_LENGTH
from crm_core.models.base import Base


class EncryptionKey(Base):
    __tablename__ = "encryption_keys"
    # Bookkeeping of the keys, not a change to the CRM.
    __audited__ = False

    key_id: Mapped[str] = mapped_column(sa.String(KEY_ID_LENGTH), primary_key=True)
    first_used_at: Mapped[datetime] = mapped_column(default=utcnow)
