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
            assert exc.message == "Stage必须是 won, lost 之一，而不是 'maybe'"
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
