"""The bot core in Chinese: help, usage errors, refusals and the form a missing argument asks for."""

from __future__ import annotations

from bot.args import Kind, Param, UsageError, convert
from bot.messages import Reply
from crm_core import i18n
from crm_core.models import Role


def test_help_usage_errors_and_refusals_in_chinese(chat):
    li = chat.user("Li Wei", Role.ADMIN)
    assert "中文" in chat.say(li, "/lang zh").text
    listing = chat.say(li, "/help").reply
    assert listing.title == "chatcrm 命令"
    assert listing.fields[0].label == "您" and "管理员" in listing.fields[0].value
    assert any(item.text.startswith("/lang") and "语言" in (item.detail or "") for item in listing.sections[0].items)
    assert "含空格的参数请用引号" in (listing.footer or "")
    unknown = chat.say(li, "/frobnicate").reply
    assert unknown.title == "我不认识 '/frobnicate'。以下是您可以使用的命令："
    bad = chat.say(li, "/lang zh extra").reply
    assert bad.text and bad.text.startswith("多余的内容") and bad.text.endswith("。")
    assert bad.footer == "用法：/lang [zh | en | auto]"
    viewer = chat.user("Wang Fang", Role.VIEWER)
    chat.say(viewer, "/lang zh")
    assert "您的角色（只读用户）无法使用 /role" in chat.say(viewer, "/role wang.fang admin").text


def test_usage_errors_and_placeholders_follow_the_language():
    stage = Param("stage", Kind.CHOICE, choices=("won", "lost"), label="Stage")
    amount = Param("amount", Kind.INT, label="Page")
    with i18n.use_language("zh"):
        try:
            convert(stage, "maybe")
        except UsageError as exc:
            assert exc.message == "阶段必须是 won, lost 之一，而不是 'maybe'"
        try:
            convert(amount, "many")
        except UsageError as exc:
            assert exc.message == "页码必须是数字，而不是 'many'"
        assert amount.usage() == "<页码>" and stage.usage() == "<won|lost>"
    assert amount.usage() == "<amount>"


def test_a_reply_form_carries_the_language_it_was_written_in(chat):
    li = chat.user("Li Wei", Role.ADMIN)
    chat.say(li, "/lang zh")
    asked = chat.say(li, "/help", wants_form=True, can_ask=True).reply
    assert asked.form is not None and asked.form.language == "zh"
    assert asked.form.inputs[0].label == "命令" and asked.form.title == "您在这里可以做什么"
    assert Reply.from_dict(asked.to_dict()).form == asked.form


def test_admin_commands_in_chinese_with_a_plural_and_numbers(chat):
    from crm_core.services import customers

    li = chat.user("Li Wei", Role.ADMIN)
    chat.say(li, "/lang zh")
    with chat.app.uow() as uow:
        customer = customers.create_customer(uow, "阿克米科技有限公司", {"email": "buy@acme.example"})
    preview = chat.say(li, f"/customer erase #{customer.id}").reply
    assert preview.title == f"要清除 阿克米科技有限公司（#{customer.id}）吗？"
    assert [b.label for b in preview.buttons] == ["永久清除", "取消"]
    assert preview.footer and preview.footer.startswith("或输入：/customer erase")
    erased = chat.say(li, preview.footer.removeprefix("或输入：")).reply
    assert erased.text and erased.text.startswith(f"已清除客户 #{customer.id}：") and "条相关记录" in erased.text
    assert chat.say(li, f"/customer erase #{customer.id}").reply.text == f"客户 #{customer.id} 的数据已被清除。"
    refused = chat.say(li, "/webhook add ftp://example.com events=deal.won").reply
    assert refused.text == "'ftp://example.com'：Webhook 地址必须以 https:// 开头。"
    assert chat.say(li, "/token revoke nosuch").text.startswith("✗ 您没有名为 'nosuch' 的令牌")
    whoami = chat.say(li, "/whoami").reply
    assert [f.label for f in whoami.fields] == ["角色", "时区", "账号"] and whoami.fields[0].value == "管理员"
    with i18n.use_language("zh"):
        assert i18n.ngettext("… {n} more", "… {n} more", 3) == "……另有 3 项"
        assert i18n.format_number(12345) == "12,345"


def test_what_the_background_tells_admins_and_owners_is_in_their_language():
    from bot.inbox_runner import InboxRunner
    from crm_core import webhooks
    from crm_core.inbox import Claim
    from crm_core.models import WebhookEndpoint

    claim = Claim("telegram", "1234", "{}", 5)
    report = InboxRunner._poisoned_report(claim, "R3F", "zh")
    assert report.language == "zh"
    assert report.text == "一条 Telegram 消息（1234）尝试处理 5 次仍未成功，已搁置（参考号 R3F）。详情请查看日志。"
    assert InboxRunner._poisoned_report(claim, "R3F", None).text.startswith("A Telegram message (1234) could not")

    # A disabled webhook's stored reason stays English (an API field); readers get their language.
    endpoint = WebhookEndpoint(disabled_reason="every delivery failed for 24 hours (last: no answer)")
    with i18n.use_language("zh"):
        assert webhooks.disabled_text(endpoint) == "连续 24 小时每次投递都失败（最后一次：无响应）"
    assert webhooks.disabled_text(endpoint) == endpoint.disabled_reason
    other = WebhookEndpoint(disabled_reason="switched off by hand")
    with i18n.use_language("zh"):
        assert webhooks.disabled_text(other) == "switched off by hand"
