"""Templates: per-format escaping, language fallback, admin overrides from chat, and the sandbox
refusing (not executing) known escapes; overrides on both databases."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.messages import Tone
from crm_core.models import TemplateOverride
from crm_core.templating import TemplateRefused, render_message, sample_context, validate_override
from crm_core.templating.sandbox import render_source

REMINDER = "followup_reminder"


@pytest.fixture(autouse=True, scope="module")
def _platforms_known():
    """What a chatcrm process does first: load the plugins, which tells core each platform's formats
    (without it Slack renders as plain text, and these tests passed only after another test built an app)."""
    from bot.bootstrap import load_plugins
    from bot.settings import Settings

    load_plugins(Settings())


def context(name: str = "Acme <!channel> & <b>Co</b>") -> dict:
    data = sample_context(REMINDER)
    return {**data, "customer": {**data["customer"], "name": name}}


# Escaping and choosing a variant


def test_each_format_escapes_user_data_for_itself():
    slack = render_message(None, REMINDER, "slack", "en", context()).text
    telegram = render_message(None, REMINDER, "telegram", "en", context()).text
    console = render_message(None, REMINDER, "console", "en", context()).text
    assert "*Customer:* Acme &lt;!channel&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" in slack
    assert "<b>Customer:</b> Acme &lt;!channel&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" in telegram
    assert "Customer: Acme <!channel> & <b>Co</b>" in console


def test_block_kit_values_are_escaped_inside_json():
    data = sample_context("digest")
    data["followups_overdue"] = [{"rep": 'Quote " and \\ and <@U123>', "count": 1}]
    blocks = render_message(None, "digest", "slack", "en", data).blocks
    assert blocks[-3]["text"]["text"] == '*Follow-ups overdue*\nQuote " and \\ and &lt;@U123&gt; 1'


@pytest.mark.parametrize(
    "language, first_line",
    [
        ("en", "Reminder: call about the renewal"),
        ("zh", "提醒：call about the renewal"),
        ("zh-CN", "提醒：call about the renewal"),
        ("de", "Reminder: call about the renewal"),  # no German variant: English
        (None, "Reminder: call about the renewal"),
    ],
)
def test_the_recipients_language_picks_the_variant_with_english_as_fallback(language, first_line):
    assert render_message(None, REMINDER, "console", language, context()).text.splitlines()[0] == first_line


def test_the_templates_folder_can_be_moved(tmp_path):
    from bot.settings import Settings
    from crm_core.templating import catalog

    folder = tmp_path / "mine" / REMINDER
    folder.mkdir(parents=True)
    (folder / "en.text.j2").write_text("Hey {{ rep.name }}: {{ followup.text }}")
    data = context()
    assert Settings.from_env({"CHATCRM_TEMPLATES_DIR": str(tmp_path / "mine")}).templates_dir == str(tmp_path / "mine")
    try:
        catalog.use_templates_dir(tmp_path / "mine")
        assert render_message(None, REMINDER, "telegram", "en", data).text == "Hey Rita Rep: call about the renewal"
        catalog.use_templates_dir(tmp_path / "nowhere")
        with pytest.raises(FileNotFoundError, match="set CHATCRM_TEMPLATES_DIR"):
            render_message(None, REMINDER, "console", "en", data)
    finally:
        catalog.use_templates_dir(None)


# The sandbox

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ rep['__class__'] }}",
    "{{ rep|attr('__class__') }}",
    "{{ '{0.__class__.__base__}'.format(rep) }}",
    "{{ ''.format_map.__self__ }}",
    "{{ rep.name.__class__.__base__.__subclasses__() }}",
    "{% set x = rep.name %}{{ x.__len__ }}",
    "{{ config.__class__ }}",
    "{{ request.application.__globals__ }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_known_sandbox_escapes_are_refused_not_executed(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TemplateRefused, match=r"refused|not allowed|may not use|failed"):
        validate_override(REMINDER, "text", source)
    # Rendered directly (no static check), the sandbox refuses it too.
    with pytest.raises(TemplateRefused):
        render_source(source, "text", context())
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "source, reason",
    [
        ("{% set l = [] %}{{ l.append(1) }}", "refused: access to attribute 'append' of 'list' object is unsafe"),
        ("{{ 'x' * 100000000 }}", "refused: that repetition would build a value larger than a message may be"),
        ("{{ 2 ** 100000 }}", "refused: exponents above 64 are not allowed"),
        ("{% for i in range(10) %}{{ 'x' * 3000 }}{% endfor %}", "the message would be longer than 20,000 characters"),
        (
            "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
            "the template runs too long",
        ),
        ("{{ rep.nmae }}", "the template failed: 'dict object' has no attribute 'nmae'"),
        ("{% if %}", "the template does not parse (line 1): Expected an expression"),
    ],
)
def test_dangerous_or_broken_templates_are_refused_with_a_reason(source, reason):
    with pytest.raises(TemplateRefused) as refused:
        validate_override(REMINDER, "text", source)
    assert str(refused.value).startswith(reason), str(refused.value)


# /template from chat


@pytest.fixture
def admin(chat):
    from crm_core.models import Role

    return chat.user("Ada Admin", Role.ADMIN)


def overrides(app) -> list[tuple[str, str, str]]:
    with app.uow() as uow:
        return [(o.kind, o.language, o.format) for o in uow.session.scalars(sa.select(TemplateOverride))]


def test_an_admin_overrides_shows_and_resets_a_template(chat, app, admin):
    saved = chat.say(
        admin, "/template set followup_reminder zh 提醒 {{ rep.name }}：{{ followup.text }}（{{ customer.name }}）"
    ).reply
    assert saved.tone is Tone.SUCCESS and saved.title == "Template followup_reminder (zh, text) saved"
    assert saved.sections[0].text == "提醒 Rita Rep：call about the renewal（Acme Corp）"
    assert overrides(app) == [(REMINDER, "zh", "text")]
    with app.uow() as uow:
        # Used from now on, for every platform (escaped for Telegram), in that language only.
        telegram = render_message(uow.session, REMINDER, "telegram", "zh", context("<Acme>")).text
        english = render_message(uow.session, REMINDER, "telegram", "en", context()).text
    assert telegram == "提醒 Rita Rep：call about the renewal（&lt;Acme&gt;）"
    assert english.startswith("⏰ <b>Reminder:</b>")
    shown = chat.say(admin, "/template show followup_reminder zh").reply
    assert shown.title == "Template followup_reminder zh text (admin override)"
    assert shown.sections[0].text.startswith("提醒 {{ rep.name }}")
    built_in = chat.say(admin, "/template show followup_reminder.html").reply
    assert built_in.title == "Template followup_reminder en html (built in)"
    assert chat.say(admin, "/template reset followup_reminder zh").reply.tone is Tone.SUCCESS
    assert overrides(app) == []
    again = chat.say(admin, "/template reset followup_reminder zh").reply
    assert again.text == "Followup_reminder (zh, text) has no override; it already is the built-in one."


def test_resetting_a_template_without_a_built_in_version_says_it_is_deleted(chat, app, admin):
    assert chat.say(admin, "/template set campaign_spring zh 春季 {{ customer.name }}").reply.tone is Tone.SUCCESS
    reply = chat.say(admin, "/template reset campaign_spring.text zh").reply
    assert reply.tone is Tone.SUCCESS
    assert reply.text == "Template campaign_spring (zh, text) deleted: campaign_spring now has no text template in zh."
    assert overrides(app) == []


def test_a_format_specific_override_and_a_body_on_its_own_lines(chat, app, admin):
    reply = chat.say(
        admin, "/template set followup_reminder.html en\n<b>{{ followup.text }}</b>\n{{ customer.name }}"
    ).reply
    assert reply.tone is Tone.SUCCESS
    with app.uow() as uow:
        assert (
            render_message(uow.session, REMINDER, "telegram", "en", context("A&B")).text
            == "<b>call about the renewal</b>\nA&amp;B"
        )
        # Slack has no html variant: it keeps the built-in mrkdwn.
        assert render_message(uow.session, REMINDER, "slack", "en", context()).text.startswith(":alarm_clock:")


@pytest.mark.parametrize("body", ESCAPES[:6] + ["{{ rep.nmae }}", "{% for %}"])
def test_refused_overrides_are_reported_to_the_author_and_not_stored(chat, app, admin, body):
    reply = chat.say(admin, f"/template set followup_reminder en {body}").reply
    assert reply.tone is Tone.ERROR
    assert reply.title == "Template followup_reminder (en, text) not saved"
    assert reply.text and reply.footer.startswith("Nothing was changed.")
    assert overrides(app) == []


def test_a_body_starting_with_a_short_word_is_not_taken_for_a_language(chat, app, admin):
    assert (
        chat.say(admin, "/template set followup_reminder ok {{ rep.name }}, {{ followup.text }}").reply.tone
        is Tone.SUCCESS
    )
    assert overrides(app) == [(REMINDER, "en", "text")]
    with app.uow() as uow:
        assert (
            render_message(uow.session, REMINDER, "console", "en", context()).text
            == "ok Rita Rep, call about the renewal"
        )


def test_bad_names_formats_and_roles(chat, admin):
    from crm_core.models import Role

    assert chat.say(admin, "/template show nothing").reply.text.startswith("There is no template 'nothing'")
    assert chat.say(admin, "/template show digest.pdf").reply.text.startswith("'pdf' is not a template format")
    assert (
        chat.say(admin, '/template set digest.blocks en [{"no": "type"}]').reply.text
        == 'The Block Kit template must give a list of blocks, each with a "type"'
    )
    manager = chat.user("Mia Manager", Role.MANAGER)
    assert (
        chat.say(manager, "/template list").reply.text
        == "Your role (manager) can't use /template list. Ask an admin if you need it."
    )
    listed = chat.say(admin, "/template list").reply
    assert [i.text for i in listed.sections[0].items] == [
        "campaign_announcement",
        "campaign_first_order",
        "campaign_ticket_resolved",
        "digest",
        "followup_reminder",
        "recommendations",
        "status_card",
    ]


def test_an_override_that_breaks_at_send_time_falls_back_to_the_built_in(app, caplog):
    with app.uow() as uow:
        # Stored directly (as if the data had changed since it was checked): it fails on real data.
        uow.session.add(
            TemplateOverride(
                kind=REMINDER, format="text", language="en", body="{{ customer.name }} {{ customer.missing_field }}"
            )
        )
    caplog.set_level(logging.WARNING)
    with app.uow() as uow:
        text = render_message(uow.session, REMINDER, "console", "en", context()).text
    assert text.startswith("Reminder: call about the renewal")
    assert "template override followup_reminder en text (admin override) failed, using the built-in one" in caplog.text


def test_every_shipped_template_renders_its_sample():
    root = Path(__file__).resolve().parents[1] / "templates"
    for path in sorted(root.glob("*/*.j2")):
        kind, (_language, fmt, _) = path.parent.name, path.name.split(".")
        rendered = validate_override(kind, fmt, path.read_text(encoding="utf-8"))
        assert rendered.strip(), path
