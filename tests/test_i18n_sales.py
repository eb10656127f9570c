"""The sales side in Chinese: a rep says /lang zh, then works a customer through the real dispatcher
(card, deals with a Chinese stage alias, notes, history, follow-ups), on both databases. Replies are
Chinese (titles, labels, plurals, money and dates in the Chinese format), and the customer card keeps
no English label of the English card."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import time_machine

from bot.messages import Reply, Tone
from crm_core import history, i18n
from crm_core.models import DealStage, FollowUp, Role
from crm_core.services import deals, followups, users

SHANGHAI = "Asia/Shanghai"
# Friday 27 March 2026, 17:00 in Shanghai.
NOW = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
NAME = "阿克米科技有限公司"


@pytest.fixture
def rep(chat, app):
    origin = chat.user("Rita Rep", Role.SALES)
    with app.uow() as uow:
        user = users.user_for_identity(uow, users.PlatformId("console", origin.user_external_id))
        users.set_timezone(uow, user, SHANGHAI)
    return origin


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _fields(reply: Reply) -> dict[str, str]:
    return {f.label: f.value for f in reply.fields}


def _ui_text(reply: Reply) -> str:
    """Every piece of a card that chatcrm wrote (not the renderer's own frame)."""
    parts = [reply.title or "", reply.text or "", reply.footer or ""]
    parts += [f"{f.label}: {f.value}" for f in reply.fields]
    for section in reply.sections:
        parts += [section.title or "", section.empty or ""]
        parts += [f"{i.text} {i.detail or ''} {i.button.label if i.button else ''}" for i in section.items]
    parts += [b.label for b in reply.buttons]
    return "\n".join(parts)


def _english_labels(reply: Reply) -> set[str]:
    """The English card's own words: field labels, section titles (without counts), empties, buttons."""
    labels = {f.label for f in reply.fields} | {b.label for b in reply.buttons}
    for section in reply.sections:
        labels |= {re.sub(r"\s*\(.*\)$", "", section.title or ""), section.empty or ""}
    return {label for label in labels if label}


def test_a_rep_works_a_customer_in_chinese(chat, rep, app, clock):
    english = chat.say(rep, f"/customer new {NAME} email=buy@akemi.example phone=+862155550100").reply
    assert english.tone is Tone.SUCCESS and "Company" in _fields(english)
    english_labels = _english_labels(english)
    assert {"Company", "Owner", "Lifetime value", "Open deals", "Log note", "New deal"} <= english_labels

    assert chat.say(rep, "/lang zh").reply.text == "好的，今后我会用中文回复您。"

    card = chat.say(rep, "/customer #1").reply
    assert card.title == NAME
    fields = _fields(card)
    assert list(fields)[:8] == ["公司", "负责人", "邮箱", "电话", "国家/地区", "语言 / 时区", "客户终身价值", "订单"]
    assert fields["负责人"] == "未分配" and fields["邮箱"] == "buy@akemi.example"
    assert [s.title for s in card.sections] == ["进行中的商机（0）", "未解决的工单（0）", "最近的互动记录"]
    assert [b.label for b in card.buttons] == ["记备注", "新建商机", "编辑", "新建工单"]
    assert card.footer == "客户 #1 · 2026年3月27日 录入 CRM"
    shown = _ui_text(card)
    left = sorted(label for label in english_labels if label in shown)
    assert not left, f"English UI left on the Chinese card: {left}"
    # Besides data (the email address, the rep's name) and the #id, no Latin word is left.
    words = set(re.findall(r"[A-Za-z]{2,}", shown.replace("buy@akemi.example", "").replace("Rita Rep", "")))
    assert words <= {"CRM"}, words

    # Deals: a creation in yuan with a Chinese date, then a stage change typed in Chinese.
    new = chat.say(rep, '/deal new #1 "服务器采购" amount="1234.50 CNY" close=2026-06-30').reply
    assert new.text == f"已为 {NAME} 创建商机 #1。"
    assert new.title == "商机 #1：服务器采购"
    assert _fields(new) == {
        "客户": f"{NAME} (#1)",
        "阶段": "线索",
        "金额": "¥1,234.50",
        "赢单概率": "10%",
        "预计成交": "2026年6月30日",
        "负责人": "Rita Rep",
    }
    moved = chat.say(rep, "/deal stage 1 谈判").reply
    assert moved.text == "已从「线索」移到「谈判」。"
    won = chat.say(rep, "/deal stage 1 赢单").reply
    assert won.text == "已从「谈判」移到「赢单」。" and _fields(won)["阶段"] == "赢单"
    assert _fields(won)["关闭时间"] == "2026年3月27日 17:00"
    chat.say(rep, "/deal new #1 年度维保 amount=8000")
    listed = chat.say(rep, "/deal list all").reply
    assert listed.title == "全部商机"
    assert listed.footer == "2 个商机 · 合计 ¥1,234.50 + €8,000.00"
    again = chat.say(rep, "/deal stage 1 won").reply
    assert again.tone is Tone.ERROR and "已处于「赢单」阶段" in again.text
    bad = chat.say(rep, "/deal stage 2 大概吧").reply
    assert bad.tone is Tone.ERROR and "新阶段必须是 lead, qualified" in bad.text

    # Notes and the history.
    noted = chat.say(rep, "/note #1 电话沟通了报价 kind=call").reply
    assert noted.text == f"已在 {NAME}（#1）下记录电话。"
    assert [b.label for b in noted.buttons] == ["打开客户卡片"]
    history = chat.say(rep, "/history #1").reply
    assert history.title == f"{NAME}（#1）的历史记录"
    assert history.footer == "1 条互动记录"
    assert history.sections[0].items[0].detail == "2026年3月27日 17:00 · 电话 · Rita Rep · console"

    # Follow-ups: set one, list it, mark it done.
    followup = chat.say(rep, "/followup #1 tomorrow 9:00 回访确认合同").reply
    assert followup.tone is Tone.SUCCESS
    assert followup.text == (
        f"已设置跟进提醒 #1，时间 2026年3月28日 09:00 {SHANGHAI}（16 小时后）：回访确认合同 — {NAME}。"
    )
    assert [b.label for b in followup.buttons] == ["取消提醒", "我的跟进提醒"]
    mine = chat.say(rep, "/followup list").reply
    assert mine.title == "我未完成的跟进提醒"
    assert mine.sections[0].items[0].detail == "2026年3月28日 09:00 到期 · Rita Rep · 待提醒"
    assert mine.footer == f"1 条未完成 · 时间按 {SHANGHAI}"
    done = chat.say(rep, "/followup done 1").reply
    assert done.text == f"跟进提醒 #1 已完成：回访确认合同 — {NAME}。"

    # The card now shows the deal, the note, and Chinese labels throughout.
    card = chat.say(rep, "/customer #1").reply
    assert [s.title for s in card.sections][:1] == ["进行中的商机（1）"]
    deal_line = card.sections[0].items[0]
    assert deal_line.detail == "线索 · €8,000.00 · 10% · Rita Rep" and deal_line.button.label == "更改阶段"
    assert card.sections[2].items[0].detail == "电话 · Rita Rep · 2026年3月27日 · console"


def test_english_stays_english_with_real_plurals(chat, rep, app, clock):
    created = chat.say(rep, "/customer new AcmeCorp").reply
    assert created.tone is Tone.SUCCESS, created
    assert chat.say(rep, "/deal new #1 Printers amount=100").reply.tone is Tone.SUCCESS
    one = chat.say(rep, "/deal list all").reply
    assert one.footer == "1 deal · €100.00 in total"
    chat.say(rep, "/deal new #1 Paper amount=50")
    assert chat.say(rep, "/deal list all").reply.footer == "2 deals · €150.00 in total"
    assert _fields(chat.say(rep, "/deal 1").reply)["Stage"] == "lead"


@pytest.mark.parametrize(
    "typed, stage",
    [
        ("赢单", DealStage.WON),
        ("输单", DealStage.LOST),
        ("线索", DealStage.LEAD),
        ("已确认", DealStage.QUALIFIED),
        ("方案", DealStage.PROPOSAL),
        ("谈判", DealStage.NEGOTIATION),
        ("won", DealStage.WON),
        ("neg", DealStage.NEGOTIATION),
        (" Lost ", DealStage.LOST),
    ],
)
def test_deal_stages_take_english_words_prefixes_and_chinese_aliases(typed, stage):
    assert deals.parse_stage(typed) is stage
    assert deals.match_stage(typed) is stage


def test_a_stage_that_is_not_one_is_refused():
    assert deals.match_stage("l") is None  # lead or lost
    assert deals.match_stage("赢单", allowed=(DealStage.LEAD, DealStage.QUALIFIED)) is None
    with pytest.raises(Exception, match="is not a stage"):
        deals.parse_stage("maybe")


def test_the_reminder_dates_and_the_last_contact_are_in_the_reps_language(chat, rep, app, clock):
    chat.say(rep, f"/customer new {NAME}")
    chat.say(rep, "/note #1 电话沟通了报价 kind=call")
    assert chat.say(rep, "/followup #1 tomorrow 9:00 回访确认合同").reply.tone is Tone.SUCCESS
    # What the reminder templates get, written in the rep's language (the scheduler sets it).
    with app.uow() as uow, i18n.use_language("zh"):
        data = followups.reminder_context(uow, uow.session.get(FollowUp, 1), "CNY")
    assert data["followup"]["due"] == "2026年3月28日 09:00"
    assert data["customer"]["last_interaction"] == "2026年3月27日 · 电话 · 电话沟通了报价"
    # English keeps the unambiguous ISO dates, like every English reply.
    with app.uow() as uow:
        data = followups.reminder_context(uow, uow.session.get(FollowUp, 1), "CNY")
    assert data["followup"]["due"] == "2026-03-28 09:00"
    assert data["customer"]["last_interaction"] == "2026-03-27 · call · 电话沟通了报价"


def test_an_admin_reads_the_audit_log_in_chinese_at_local_time(chat, app, clock):
    admin = chat.user("Ada Admin", Role.ADMIN)
    chat.say(admin, f"/customer new {NAME}")
    chat.say(admin, "/customer edit #1 phone=+862155550100")
    chat.say(admin, "/tz Asia/Shanghai")
    chat.say(admin, "/lang zh")
    log = chat.say(admin, "/audit #1").reply
    assert log.footer == "最新的在前；时间按 Asia/Shanghai。"
    texts = [item.text for item in log.sections[0].items]
    assert texts[0].endswith(" · 2026年3月27日 17:00 · 修改了客户 #1"), texts
    assert texts[-1].endswith(" · 2026年3月27日 17:00 · 新建了客户 #1"), texts
    # The raw action stays, as the filter takes it: action=update shows the change only.
    assert "action=update" in (log.sections[0].items[0].detail or "")
    changed = chat.say(admin, "/audit #1 action=update").reply
    assert [item.text for item in changed.sections[0].items] == texts[:1]


def test_the_history_window_of_an_analysis_in_chinese():
    newest = datetime(2010, 12, 2, tzinfo=UTC)
    with i18n.use_language("zh"):
        assert history.describe(None, None, 365) == "最近 365 天"
        assert history.describe(newest, history.GIVEN, 7) == "截至 2010年12月1日 为止 7 天"
        assert history.source_label(history.NEWEST_ORDER) == "最新订单的日期"
    assert history.describe(newest, history.GIVEN, 1) == "the 1 day to 2010-12-01"


def test_a_date_custom_field_reads_in_the_readers_format(chat, app, clock):
    admin = chat.user("Ada Admin", Role.ADMIN)
    made = chat.say(admin, "/field new customer renewal date label=续约日期").reply
    assert made.tone is Tone.SUCCESS, made
    chat.say(admin, f"/customer new {NAME}")
    assert chat.say(admin, "/customer edit #1 renewal=2026-06-30").reply.tone is Tone.SUCCESS
    assert _fields(chat.say(admin, "/customer #1").reply)["续约日期"] == "2026-06-30"
    chat.say(admin, "/lang zh")
    assert _fields(chat.say(admin, "/customer #1").reply)["续约日期"] == "2026年6月30日"
