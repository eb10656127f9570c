"""Campaigns, segments, digests and reminders in Chinese: a manager who chose /lang zh gets every answer
in Chinese (errors naming the bad filter term, plurals, days and money written the Chinese way), and
each scheduled message is written in its recipient's language, buttons included, while an English
recipient's stays English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from crm_core import scheduling
from crm_core.campaigns import delivery, watch
from crm_core.models import Campaign, OutboxMessage, Product, Role, User
from crm_core.services import customers, orders, segments, users
from crm_core.services import followups as followups_service
from tests.test_campaigns import _customer, deliver

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday


def _run_due(app, when: datetime, tmp_path) -> None:
    with time_machine.travel(when, tick=False):
        scheduling.run_due(app.session_factory, tasks=app.plugins.tasks, config={"CHATCRM_MEDIA_DIR": str(tmp_path)})


def _outbox(app, kind: str) -> list[OutboxMessage]:
    with app.uow() as uow:
        return list(uow.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == kind)))


def _speaks(app, name: str, language: str | None) -> None:
    with app.uow() as uow:
        uow.session.execute(sa.update(User).where(User.name == name).values(language=language))


@pytest.fixture
def manager(chat):
    origin = chat.user("Mia Manager", Role.MANAGER)
    assert "中文" in chat.say(origin, "/lang zh").text
    return origin


def test_segments_answer_in_chinese_and_a_bad_term_is_named(chat, app, manager):
    refused = chat.say(manager, "/segment new vip country=DE colour=red")
    assert refused.reply.text == "“colour=red”（第 12 个字符）：未知的键 colour（您是想输入 country 吗？可用的键：" + (
        "tag, country, language, owner, last_order, orders, ltv, open_ticket, rfm, churn, field.<key>）"
    )
    assert "筛选语法：" in refused.reply.footer
    wrong_value = chat.say(manager, "/segment new vip ltv>=abc").reply.text
    assert wrong_value == "“ltv>=abc”（第 1 个字符）：ltv 需要一个金额，例如 ltv>=1000 或 ltv<250.50"
    with app.uow() as uow:
        assert segments.list_all(uow) == []

    with time_machine.travel(NOW, tick=False):
        anna_id = _customer(app, "Anna Alpha", telegram="1001", language="en")
        with app.uow() as uow:
            product = Product(sku="P1", name="Widget", price_cents=123450)
            uow.session.add(product)
            uow.session.flush()
            orders.create_order(uow, anna_id, [orders.LineInput(product.id, 1)], ordered_at=NOW)
        saved = chat.say(manager, "/segment new germany country=DE").reply
    assert saved.title == "客户分群 germany 已保存"
    fields = {f.label: f.value for f in saved.fields}
    assert fields["当前客户数"] == "1"
    [anna] = saved.sections[0].items
    # Money and the last order's day the Chinese way.
    assert anna.detail == "DE · 客户终身价值 €1,234.50 · 最近订单 2026年11月2日"
    listed = chat.say(manager, "/segment list").reply
    assert listed.title == "客户分群" and listed.sections[0].items[0].text == "germany · 1 位客户"


def test_a_campaign_is_drafted_previewed_started_and_watched_in_chinese(chat, app, manager, tmp_path):
    with time_machine.travel(NOW, tick=False):
        _customer(app, "Anna Alpha", telegram="1001", language="en")
        _customer(app, "Bruno Beta", telegram="1002", language="zh")
        with app.uow() as uow:
            segments.create(uow, "germany", "country=DE", None)
        drafted = chat.say(manager, "/campaign new autumn segment=germany template=campaign_announcement at=now")
        assert drafted.reply.title == "营销活动 autumn 已起草"
        assert drafted.reply.text == (
            "客户分群 germany · 模板 campaign_announcement · 单次 · 语言 自动；首次发送：2026年11月2日 10:00:00 UTC。"
        )
        assert [b.label for b in drafted.reply.buttons] == ["预览", "发给我测试", "启动"]

        preview = chat.say(manager, "/campaign preview autumn").reply
        assert preview.title == "autumn 预览"
        assert preview.footer == "目前可触达 2 位收件人。每条消息都带有“退订”按钮。"
        assert "Hello Anna" in preview.sections[0].text and "秋季" in preview.sections[1].text

        started = chat.say(manager, "/campaign start autumn").reply
        assert started.text == "营销活动 autumn 已启动：首轮于 2026年11月2日 10:00:00 UTC 发送，目前有 2 位收件人。"
        bad = chat.say(manager, "/campaign new spring segment=germany template=campaign_announcement at=soon").reply
        assert bad.text.startswith("无法识别 at='soon' 这个时间")
    _run_due(app, NOW + timedelta(seconds=1), tmp_path)
    sent = {m.conversation: m.payload for m in deliver(app)}
    # Each customer's message and its button in their own language.
    assert [b["label"] for b in sent["1002"]["buttons"]] == ["退订"]
    assert [b["label"] for b in sent["1001"]["buttons"]] == ["Unsubscribe"]
    with app.uow() as uow:
        delivery.settle(uow)

    status = chat.say(manager, "/campaign status autumn").reply
    assert status.title == "营销活动 autumn · 已完成"
    assert status.text.endswith("第 1 轮：▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓ 100%")
    fields = {f.label: f.value for f in status.fields}
    assert fields["已发送"] == "2" and fields["14 天内的订单"] == "0 · €0.00"
    [run] = status.sections[0].items
    assert run.text == "第 1 轮 · 2026年11月2日 10:00:00 · 已完成"
    assert run.detail.startswith("收件人 2 · 已发送 2 · 失败 0")


def test_the_live_status_card_is_written_in_its_watchers_language(app, chat, manager, tmp_path):
    with time_machine.travel(NOW, tick=False):
        _customer(app, "Bruno Beta", telegram="1002", language="zh")
        chat.say(manager, "/campaign new autumn segment=all template=campaign_announcement at=now")
        chat.say(manager, "/campaign start autumn")
    _run_due(app, NOW + timedelta(seconds=1), tmp_path)
    with app.uow() as uow:
        campaign = uow.session.scalars(sa.select(Campaign)).one()
        # Posted from an English request: the card still speaks its watchers' languages.
        assert watch.watch(uow, campaign, "telegram", "chat-zh", "zh") is not None
        assert watch.watch(uow, campaign, "telegram", "chat-en", "en") is not None
    cards = {m.conversation: m.payload["formatted_text"] for m in _outbox(app, watch.KIND)}
    assert cards["chat-zh"].startswith("📣 营销活动 autumn · 发送中\n客户分群 all · 模板 campaign_announcement · 单次")
    assert "第 1 轮（共 1 轮）· 收件人 1 位" in cards["chat-zh"]
    assert cards["chat-zh"].endswith("发送期间，此消息会持续更新。")
    assert cards["chat-en"].startswith(
        "📣 Campaign autumn · sending\nsegment all · template campaign_announcement · once"
    )


def test_a_digest_is_subscribed_in_chinese_and_delivered_in_each_subscribers_language(chat, app, manager, tmp_path):
    english = chat.user("Ed Manager", Role.MANAGER)
    with time_machine.travel(NOW, tick=False):
        reply = chat.say(manager, "/digest subscribe daily 08:00").reply
        assert reply.text == (
            "已为此会话订阅：每天 08:00（UTC）发送日报；下一份将于 2026年11月3日 08:00:00（UTC）送达。"
        )
        assert [b.label for b in reply.buttons] == ["立即查看一份"]
        # A weekday may be typed in Chinese.
        weekly = chat.say(manager, "/digest subscribe weekly 09:00 周五").reply.text
        assert weekly.startswith("已为此会话订阅：每周五 09:00（UTC）发送周报")
        assert chat.say(manager, "/digest unsubscribe weekly").reply.text == "此会话将不再收到周报。"
        assert chat.say(english, "/digest subscribe daily 08:00").reply.text.startswith(
            "This conversation gets the daily at 08:00 UTC digest"
        )
        listed = chat.say(manager, "/digest list").reply
        assert listed.title == "摘要订阅"
        assert listed.sections[0].items[0].text == "console:dm-mia.manager（本会话）"
    _run_due(app, datetime(2026, 11, 3, 8, 0, tzinfo=UTC), tmp_path)
    digests = {m.conversation: m.payload for m in _outbox(app, "digest")}
    chinese, english_text = digests["dm-mia.manager"], digests["dm-ed.manager"]
    assert chinese["formatted_text"].startswith("日报 · 2026年11月2日（对比 2026年11月1日）\n新客户：0（±0）")
    assert "销售漏斗：€0.00" in chinese["formatted_text"] and "线索：0 个商机" in chinese["formatted_text"]
    assert chinese["image"]["title"] == "摘要 2026年11月2日"
    assert english_text["formatted_text"].startswith("Daily digest · Nov 2, 2026 (compared with Nov 1, 2026)")
    assert english_text["image"]["title"] == "Digest Nov 2, 2026"


def test_a_reminder_is_chinese_for_a_chinese_rep_and_english_for_an_english_one(chat, app, tmp_path):
    chat.user("Li Lei", Role.SALES)
    chat.user("Sam Sales", Role.SALES)
    _speaks(app, "Li Lei", "zh")
    due = NOW + timedelta(hours=1)
    with time_machine.travel(NOW, tick=False), app.uow() as uow:
        acme = customers.create_customer(uow, "Acme", {}).id
        for name in ("Li Lei", "Sam Sales"):
            rep = uow.session.scalars(sa.select(User).where(User.name == name)).one()
            followups_service.create_followup(uow, acme, rep.id, due, "call back")
    _run_due(app, due, tmp_path)
    with app.uow() as uow:
        addresses = {u.name: users.dm_address(u).external_id for u in uow.session.scalars(sa.select(User))}
    sent = {m.conversation: m.payload for m in _outbox(app, "reminder")}
    chinese, english = sent[addresses["Li Lei"]], sent[addresses["Sam Sales"]]
    assert chinese["formatted_text"].startswith("提醒：call back\n客户：Acme")
    assert [b["label"] for b in chinese["buttons"]] == ["完成", "推迟一天"]
    assert english["formatted_text"].startswith("Reminder: call back\nCustomer: Acme")
    assert [b["label"] for b in english["buttons"]] == ["Done", "Snooze 1 day"]
