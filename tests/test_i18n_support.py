"""The support side in Chinese (issue 16), on both databases.

- A Telegram customer whose app is in Chinese is greeted and answered in Chinese without asking,
  while the copy of their message in the staff room stays in the company's language; the rating
  request they get when staff resolve their ticket later is in Chinese too.
- With CHATCRM_LANGUAGE=zh the staff room gets Chinese copies, an English-speaking customer still
  gets English, and a staff reply to a Chinese copy still answers its ticket.
- Staff who chose Chinese (/lang zh) work a ticket in Chinese, typing priorities and statuses in
  Chinese too; forms still offer the English values.
- A customer's photo, file or voice message is kept as a kind, not as words: the staff room, the
  ticket thread, the history and the card name it in each reader's language, the caption kept.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.desk import SupportDesk
from bot.messages import Attachment, Destination, MessageRef, Origin, Request, RequestKind, Tone
from crm_core import i18n, outbox
from crm_core.models import (
    Customer,
    CustomerChat,
    Interaction,
    OutboxMessage,
    Role,
    Ticket,
    TicketMessage,
    TicketPriority,
    TicketStatus,
)
from crm_core.services import customers, tickets
from tests.support import rows
from tests.telegram_rig import SUPPORT_CHAT


@pytest.fixture
def company_language() -> Iterator[None]:
    """CHATCRM_LANGUAGE is process-wide (set when an app is built): put it back for the next test."""
    before = i18n.default_language()
    yield
    i18n.set_default_language(before)


# -- a Telegram customer whose app is in Chinese -------------------------------------------------


def _sam_and_li(rig) -> tuple[dict, dict]:
    """Sam in the staff group, and Li, a customer whose Telegram app is in Chinese."""
    li = rig.customer(555, "Li Lei")
    li["language_code"] = "zh-hans"
    return rig.staff(900, "Sam Support"), li


def test_a_chinese_telegram_customer_gets_chinese_and_the_staff_room_keeps_the_default(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam, li = _sam_and_li(rig)

    rig.send(tg.private_text(li, "/start"))
    greeting = tg.last_sent(555)
    assert "Li，您好！" in greeting.text and "客服聊天" in greeting.text
    assert greeting["reply_markup"]["keyboard"][0][0]["text"] == "分享我的手机号"

    rig.send(tg.private_text(li, "我的打印机卡纸了"))
    [ticket] = rows(rig.app, Ticket)
    assert f"您的请求编号是 #{ticket.id}" in tg.last_sent(555).text
    # The staff room reads the company's language (English here), not the customer's.
    relay = tg.last_sent(SUPPORT_CHAT)
    assert f"Ticket #{ticket.id} · new ticket · normal" in relay.text and "我的打印机卡纸了" in relay.text
    assert "Reply to this message to answer the customer." in relay.text
    assert [b["text"] for b in relay.buttons] == ["Assign to me", "Open ticket"]
    # Their chat app's language is kept on their record, for what we send them on our own later.
    [customer] = rows(rig.app, Customer)
    assert customer.language == "zh"

    # Staff answer in their own words; the confirmation in the staff room is in the company's language.
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "请重启打印机。", reply_to=tg.message(relay)))
    assert tg.last_sent(555).text == "请重启打印机。"
    assert "Sent to Li Lei" in tg.last_sent(SUPPORT_CHAT).text

    # Resolving it (an English-speaking agent) asks Li for a rating in Chinese.
    rig.send(tg.group_text(SUPPORT_CHAT, sam, f"/ticket status {ticket.id} resolved"))
    assert "Status: open → resolved." in tg.last_sent(SUPPORT_CHAT).text
    [request] = rows(rig.app, OutboxMessage, OutboxMessage.kind == "rating_request")
    assert request.payload["reply"]["title"] == "我们的服务怎么样？"
    assert f"您的请求 #{ticket.id}「我的打印机卡纸了」已解决" in request.payload["reply"]["text"]
    assert request.payload["reply"]["language"] == "zh"


def test_a_customer_choice_is_not_overwritten_by_their_chat_app(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    li = rig.customer(556, "Li Lei")
    li["language_code"] = "zh-hans"
    rig.send(tg.private_text(li, "/start"))
    rig.send(tg.private_text(li, "/lang en"))
    assert "From now on I answer you in English." in tg.last_sent(556).text
    rig.send(tg.private_text(li, "My printer jams"))
    assert "Your request number is" in tg.last_sent(556).text
    [customer] = rows(rig.app, Customer)
    assert customer.language == "en"


# -- the company's language is Chinese -------------------------------------------------------------

ROOM = Destination("console", "staff-room")
DESK = SupportDesk(staff_room=ROOM, bot_name="Helpdesk")


def _message(
    origin: Origin, text: str, key: str, reply_to: MessageRef | None = None, attachment: Attachment | None = None
) -> Request:
    return Request(
        origin=origin,
        text=text,
        kind=RequestKind.MESSAGE,
        inbox_key=key,
        message_id=f"m-{key}",
        reply_to=reply_to,
        attachments=(attachment,) if attachment else (),
    )


def test_the_staff_room_reads_the_company_language_and_answers_its_chinese_copies(app, chat, company_language):
    i18n.set_default_language("zh")
    carla = Origin(
        "console",
        "c-1",
        "dm-c-1",
        is_private=True,
        display_name="Carla Customer",
        first_name="Carla",
        language_hint="en",
    )
    thanks, relay = app.dispatcher.handle_event(_message(carla, "My printer jams", "u1"), desk=DESK).sends
    [ticket] = rows(app, Ticket)
    assert thanks.reply.text.startswith("Thank you, we got your message.") and thanks.reply.language == "en"
    assert relay.reply.title == f"工单 #{ticket.id} · 新工单 · 普通" and relay.reply.language == "zh"
    assert relay.reply.fields[0].label == "来自"
    assert relay.reply.footer == "回复这条消息即可答复客户。"

    # Sam replies to a Chinese copy the CRM has no record of (e.g. a later part of a split message).
    sam = chat.user("Sam Support", Role.SUPPORT)
    in_room = Origin("console", sam.user_external_id, ROOM.conversation, display_name="Sam Support")
    copy = MessageRef("r-unknown", from_bot=True, text=relay.reply.title)
    [answer] = app.dispatcher.handle_event(_message(in_room, "Open tray 2", "u2", reply_to=copy), desk=DESK).sends
    assert (answer.to, answer.reply.text) == (Destination("console", "dm-c-1"), "Open tray 2")
    # Whether it arrived is said in the staff room's language.
    [sent] = app.dispatcher.report(answer, message_id="m-9")
    assert sent.reply.text == f"已发送给Carla Customer（工单 #{ticket.id}）。" and sent.reply.language == "zh"
    # The reason as the outbox gives it (a code, then the platform's English words): staff read the code's meaning.
    [failed] = app.dispatcher.report(
        answer, error=outbox.failure(outbox.UNREACHABLE, "Forbidden: bot was blocked by the user")
    )
    assert failed.reply.text == (
        f"未能送达Carla Customer：客户已屏蔽我们，或该聊天已不存在。回复已保存在工单 #{ticket.id} 中。"
    )


# -- staff working a ticket in Chinese ---------------------------------------------------------------


@pytest.fixture
def agent(chat):
    sam = chat.user("Sam Support", Role.SUPPORT)
    assert chat.say(sam, "/lang zh").reply.tone is Tone.SUCCESS
    return sam


@pytest.fixture
def acme(app) -> int:
    with app.uow() as uow:
        return customers.create_customer(uow, "Acme Corp").id


def test_staff_who_chose_chinese_work_a_ticket_in_chinese(chat, agent, acme, app):
    opened = chat.say(agent, "/ticket new acme 打印机卡纸 高").reply
    [ticket] = rows(app, Ticket)
    assert (ticket.subject, ticket.priority) == ("打印机卡纸", TicketPriority.HIGH)
    assert opened.title == f"工单 #{ticket.id}：打印机卡纸"
    assert opened.text == f"已为Acme Corp新建工单 #{ticket.id}。"
    fields = {f.label: f.value for f in opened.fields}
    assert (fields["状态"], fields["优先级"], fields["处理人"]) == ("处理中", "高", "未分配")
    assert [b.label for b in opened.buttons] == ["分配给我", "标为已解决", "添加备注", "打开客户"]
    assert opened.sections[0].title == "对话（0）" and opened.sections[0].empty == "还没有消息。"

    shown = chat.say(agent, f"/ticket {ticket.id}").reply
    assert shown.title == opened.title and shown.language == "zh"

    moved = chat.say(agent, f"/ticket priority {ticket.id} 紧急").reply
    assert moved.text.startswith("优先级：高 → 紧急。首次响应截止 ")
    assert rows(app, Ticket)[0].priority is TicketPriority.URGENT

    assigned = chat.say(agent, f"/ticket assign {ticket.id} 我").reply
    assert assigned.text == "已分配给Sam Support。"

    resolved = chat.say(agent, f"/ticket status {ticket.id} 已解决").reply
    assert resolved.text == "状态：处理中 → 已解决。解决前没有人回复过客户。"
    assert rows(app, Ticket)[0].status is TicketStatus.RESOLVED
    assert "重新打开" in [b.label for b in resolved.buttons]

    again = chat.say(agent, f"/ticket status {ticket.id} resolved").reply
    assert again.tone is Tone.ERROR and again.text.startswith(f"工单 #{ticket.id} 当前已是「已解决」")
    assert chat.say(agent, "/ticket 999").reply.text.startswith("没有工单 #999")

    listed = chat.say(agent, "/ticket list 全部").reply
    assert listed.title == "全部工单"
    assert chat.say(agent, "/ticket list 我的").reply.title == "我的未解决工单"


def test_a_plural_in_chinese_and_english(chat, agent, acme, app):
    admin = chat.user("Ada Admin", Role.ADMIN)
    assert chat.say(admin, "/consent remove acme telegram").reply.text == (
        "Acme Corp opted out on telegram; 0 waiting messages cancelled."
    )
    chat.say(admin, "/lang zh")
    assert (
        chat.say(admin, "/consent remove acme telegram").reply.text
        == "Acme Corp已在 telegram 上退订；已取消 0 条待发消息。"
    )


def test_chinese_names_of_priorities_and_statuses_are_read_and_forms_offer_the_values(chat, agent, acme):
    assert [tickets.parse_priority(w) for w in ("低", "普通", "高", "紧急", "HIGH")] == [
        TicketPriority.LOW,
        TicketPriority.NORMAL,
        TicketPriority.HIGH,
        TicketPriority.URGENT,
        TicketPriority.HIGH,
    ]
    assert [tickets.parse_status(w) for w in ("处理中", "未解决", "待回复", "已解决", "已关闭", "closed")] == [
        TicketStatus.OPEN,
        TicketStatus.OPEN,
        TicketStatus.PENDING,
        TicketStatus.RESOLVED,
        TicketStatus.CLOSED,
        TicketStatus.CLOSED,
    ]
    with pytest.raises(ValueError):
        tickets.parse_priority("中")
    chat.say(agent, "/ticket new acme 打印机卡纸 priority=紧急")
    assert rows(chat.app, Ticket)[0].priority is TicketPriority.URGENT

    form = chat.say(agent, "/ticket priority 1", can_ask=True).reply.form
    assert form is not None and form.title == "工单优先级"
    assert [i.choices for i in form.inputs] == [("low", "normal", "high", "urgent")]
    form = chat.say(agent, "/ticket status", can_ask=True).reply.form
    assert form is not None and [i.choices for i in form.inputs][-1] == ("open", "pending", "resolved", "closed")
    form = chat.say(agent, "/ticket new", can_ask=True).reply.form
    assert form is not None
    assert {i.name: i.choices for i in form.inputs}["priority"] == ("low", "normal", "high", "urgent")


def test_the_owner_is_told_of_an_urgent_ticket_in_their_own_language(chat, app):
    from crm_core.services import users

    with app.uow() as uow:
        owner = users.ensure_user(uow, users.PlatformId("telegram", "777"), display_name="Olga", role=Role.SALES)
        users.set_language(uow, owner.id, "zh")
        customers.create_customer(uow, "Acme Corp", {"owner": "Olga"})
        uow.session.add(CustomerChat(customer_id=1, platform="telegram", external_id="555", conversation="555"))
    agent = chat.user("Sam Support", Role.SUPPORT)
    chat.say(agent, "/ticket new acme site down urgent")
    [notice] = rows(app, OutboxMessage, OutboxMessage.kind == "notification")
    assert notice.payload["reply"]["title"] == "Acme Corp有新的紧急优先级工单 #1"
    assert notice.payload["reply"]["language"] == "zh"
    assert [b["label"] for b in notice.payload["reply"]["buttons"]] == ["查看工单", "分配给我"]


# -- attachments: a kind, named in the reader's language ---------------------------------------------


def test_attachments_are_named_in_each_readers_language_and_captions_kept(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam, li = _sam_and_li(rig)

    rig.send(tg.private_attachment(li, "voice"))
    [ticket] = rows(rig.app, Ticket)
    # No words in any language are stored: the kind is, and the subject is an emoji staff may rename.
    assert ticket.subject == "🎤"
    [voice] = rows(rig.app, TicketMessage)
    assert (voice.text, voice.attachment_kind, voice.attachment_name) == ("", "voice", None)
    [logged] = rows(rig.app, Interaction)
    assert (logged.text, logged.attachment_kind) == ("", "voice")
    # The staff room reads the company's language (English here).
    assert "[voice message]" in tg.last_sent(SUPPORT_CHAT).text

    rig.send(tg.private_attachment(li, "document", caption="请看报价", file_name="报价单.pdf"))
    assert "[file: 报价单.pdf] 请看报价" in tg.last_sent(SUPPORT_CHAT).text
    rig.send(tg.private_attachment(li, "sticker", emoji="👍"))
    assert "[sticker 👍]" in tg.last_sent(SUPPORT_CHAT).text
    # A photo whose caption looks like a command is still the customer's message with a photo. (A
    # document captioned with a command is that command, its input the file: /import customers.)
    rig.send(tg.private_photo(li, caption="/help"))
    assert "[photo] /help" in tg.last_sent(SUPPORT_CHAT).text
    assert len(rows(rig.app, TicketMessage)) == 4

    # Sam reads Chinese: the thread, the history and the card name the attachments in Chinese.
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "/lang zh"))
    rig.send(tg.group_text(SUPPORT_CHAT, sam, f"/ticket {ticket.id}"))
    thread = tg.last_sent(SUPPORT_CHAT).text
    assert "[语音消息]" in thread and "[文件：报价单.pdf] 请看报价" in thread and "[贴纸 👍]" in thread
    assert "voice message" not in thread and "[file" not in thread
    rig.send(tg.group_text(SUPPORT_CHAT, sam, f"/history #{ticket.customer_id}"))
    history = tg.last_sent(SUPPORT_CHAT).text
    assert "[语音消息]" in history and "[文件：报价单.pdf] 请看报价" in history
    rig.send(tg.group_text(SUPPORT_CHAT, sam, f"/customer #{ticket.customer_id}"))
    assert "[图片] /help" in tg.last_sent(SUPPORT_CHAT).text


def test_a_chinese_staff_room_names_a_photo_in_chinese(app, company_language):
    i18n.set_default_language("zh")
    carla = Origin("console", "c-2", "dm-c-2", is_private=True, display_name="Carla Customer", language_hint="en")
    photo = _message(carla, "the error screen", "p1", attachment=Attachment("photo"))
    thanks, relay = app.dispatcher.handle_event(photo, desk=DESK).sends
    assert thanks.reply.language == "en"
    assert relay.reply.text == "[图片] the error screen" and relay.reply.language == "zh"
    [ticket] = rows(app, Ticket)
    assert ticket.subject == "the error screen"
