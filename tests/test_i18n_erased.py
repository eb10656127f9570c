"""The last English in the Chinese UI: what erasure leaves in data, and the CLI's import and export problems.

An erased customer is stored as ``Erased customer #N`` with ``[erased]`` texts (and the audit log reads
``[erased]`` for shredded values): stable English markers that exports and the API keep as stored, while
every reply in chat shows them in the reader's language. ``chatcrm import``/``export`` tell their problems
in CHATCRM_LANGUAGE.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from crm_core import i18n
from crm_core.models import Role
from crm_core.services import customers, erasure, tickets
from tests.test_cli import chatcrm


@pytest.fixture
def erased(chat) -> int:
    """A customer with a ticket, erased; their id."""
    with chat.app.uow() as uow:
        customer = customers.create_customer(uow, "阿克米科技有限公司", {"email": "buy@acme.example"})
        tickets.create_ticket(uow, customer.id, "打印机卡纸")
    with chat.app.uow() as uow:
        erasure.erase(uow, customer.id, "客户要求")
    return customer.id


def test_an_erased_customer_reads_in_the_readers_language_in_chat(chat, erased):
    li = chat.user("Li Wei", Role.ADMIN)
    chat.say(li, "/lang zh")
    card = chat.say(li, f"/customer #{erased}").text
    assert f"已清除的客户 #{erased}" in card and "Erased customer" not in card
    # Found by what is stored; listed under the reader's words.
    found = chat.say(li, "/customer Erased").text
    assert f"已清除的客户 #{erased}" in found and "Erased" not in found
    listed = chat.say(li, "/ticket list all").text
    assert "[已清除]" in listed and f"已清除的客户 #{erased}" in listed and "[erased]" not in listed
    audit = chat.say(li, f"/audit #{erased}").text
    assert "[已清除]" in audit and "[erased]" not in audit

    # In English, the markers read as stored.
    eve = chat.user("Eve English", Role.ADMIN)
    assert f"Erased customer #{erased}" in chat.say(eve, f"/customer #{erased}").text
    assert "[erased]" in chat.say(eve, "/ticket list all").text


def test_exports_keep_the_stored_markers_whatever_the_language(chat, erased, tmp_path):
    from crm_core.exporting.run import export

    out = tmp_path / "customers.csv"
    with i18n.use_language("zh"), chat.app.uow() as uow:
        export(uow, "customers", fmt="csv", out=str(out))
    names = [row["name"] for row in csv.DictReader(out.open(encoding="utf-8"))]
    assert names == [f"Erased customer #{erased}"]


def test_the_marker_is_recognised_only_as_written():
    with i18n.use_language("zh"):
        assert (
            erasure.shown("Erased customer #12 and [erased], [encrypted]") == "已清除的客户 #12 and [已清除], [已加密]"
        )
        # Other text, and other spellings, are data: left alone.
        assert (
            erasure.shown("erased customer #12 [Erased] Erased customer")
            == "erased customer #12 [Erased] Erased customer"
        )
    assert erasure.shown("Erased customer #12") == "Erased customer #12"


def _csv(path: Path) -> Path:
    path.write_text("name,email\nAcme,buy@acme.example\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--sheet", "Q1"], "--sheet 只适用于 Excel 文件；people.csv 是文本（CSV）文件"),
        (["--map", "nickname=Name"], "--map nickname=…：'nickname' 不是客户字段"),
        (["--map", "name"], "--map 'name'：请写成 字段=列名"),
    ],
)
def test_cli_import_problems_are_told_in_chatcrm_language(tmp_path, args, said):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "CHATCRM_LANGUAGE": "zh"}
    result = chatcrm("import", "customers", str(_csv(tmp_path / "people.csv")), *args, env=env)
    assert result.returncode == 1
    assert said in result.stderr and "未导入任何内容" in result.stderr, result.stderr


def test_cli_import_and_export_speak_chinese_when_they_succeed(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "CHATCRM_LANGUAGE": "zh"}
    done = chatcrm("import", "customers", str(_csv(tmp_path / "people.csv")), env=env)
    assert done.returncode == 0, done.stderr
    assert "读取了 1 行。" in done.stdout and "已创建：1 位客户。" in done.stdout, done.stdout
    exported = chatcrm("export", "customers", "--out", str(tmp_path / "out.csv"), env=env)
    assert exported.returncode == 0 and "已导出 1 行 customers" in exported.stderr, exported.stderr
    # A filter on a list that is not of customers' records is refused, in Chinese too.
    filtered = chatcrm("export", "audit", "--filter", "country=DE", env=env)
    assert filtered.returncode == 1 and "--filter 用于筛选客户；audit 不是客户记录的列表" in filtered.stderr, (
        filtered.stderr
    )
