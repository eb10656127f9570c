"""/audit: admins read the audit log, filtered by customer, user, time and action, a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine

from crm_core.models import Role


def test_admins_read_the_log_filtered_and_paged(chat):
    admin, rep = chat.user("Ada Admin", Role.ADMIN), chat.user("Rita Rep", Role.SALES)
    with time_machine.travel(datetime(2026, 4, 1, 9, tzinfo=UTC), tick=False):
        made = chat.say(rep, '/customer new "Acme GmbH"').reply
        assert made.tone.value == "success", made
        chat.say(rep, '/customer new "Beta AG"')
    with time_machine.travel(datetime(2026, 5, 2, 9, tzinfo=UTC), tick=False):
        for number in range(22):
            chat.say(rep, f"/customer edit acme phone=+4930123{number:03d}")

    refused = chat.say(rep, "/audit").reply
    assert "can't use /audit" in refused.text

    first = chat.say(admin, "/audit acme").reply
    assert first.title == "Audit log · Acme GmbH (#1)" and first.private
    items = first.sections[0].items
    assert len(items) == 20
    # What happened in words, at the reader's time (UTC here), with the raw action as action= takes it.
    assert items[0].text.endswith(" · 2026-05-02 09:00 · changed customer #1") and "+4930123021" in items[0].detail
    assert "by Rita Rep" in items[0].detail and "action=update" in items[0].detail
    assert first.footer == "Newest first; times in UTC."
    [older] = first.buttons
    assert older.command.startswith("/audit acme before=")
    second = chat.say(admin, older.command).reply
    texts = [item.text for item in second.sections[0].items]
    assert len(texts) == 3 and texts[-1].endswith(" · created customer #1") and not second.buttons

    since = chat.say(admin, "/audit user:rita since=2026-05-01 action=create").reply
    assert since.sections[0].items == () and since.sections[0].empty == "No entries match."
    created = chat.say(admin, "/audit user:rita action=create").reply
    assert {item.text.split()[-1] for item in created.sections[0].items} == {"#1", "#2"}
    bad = chat.say(admin, "/audit since=yesterdayish").reply
    assert "write a date (2026-05-01) or days back (7d)" in bad.text
