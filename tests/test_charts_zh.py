"""Digest charts in Chinese: translated titles and stage labels, drawn with a CJK font (no boxes)."""

from __future__ import annotations

import warnings

from crm_core import i18n
from crm_core.reports import charts

TREND = [(f"{month}月", month * 1234500) for month in range(1, 13)]
PIPELINE = [("lead", 5000000), ("qualified", 3000000), ("proposal", 2500000), ("negotiation", 1200000)]


def _draw(tmp_path, language: str) -> list[str]:
    """Draw the chart in ``language``; the warnings matplotlib gave while drawing."""
    with i18n.use_language(language), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = charts.draw_digest_chart(
            tmp_path / f"digest-{language}.png",
            title="周报 · 2026年11月23日至29日 · 阿克米科技有限公司",
            currency="CNY",
            trend=TREND,
            pipeline=PIPELINE,
        )
    assert path.read_bytes().startswith(b"\x89PNG")
    return [str(warning.message) for warning in caught]


def test_a_chinese_chart_has_every_glyph(tmp_path):
    # matplotlib warns "Glyph 33829 (\\N{CJK UNIFIED IDEOGRAPH-8425}) missing from font(s) DejaVu Sans."
    # for every character it draws as a box.
    caught = _draw(tmp_path, "zh")
    assert not [message for message in caught if "missing from font" in message], caught


def test_the_cjk_font_comes_after_dejavu_so_latin_text_looks_the_same():
    families = charts.font_families()
    assert families[0] == "DejaVu Sans"
    assert len(families) == 2, "no CJK font: pip install pylopdf-fonts-zh-cn"


def test_titles_and_stages_follow_the_current_language():
    with i18n.use_language("zh"):
        assert i18n._("Revenue ({currency})", currency="CNY") == "营收（CNY）"
        assert [charts.stage_label(stage) for stage, _cents in PIPELINE] == ["线索", "已确认", "方案报价", "谈判"]
        assert charts.stage_label("won") == "赢单"
    with i18n.use_language("en"):
        assert charts.stage_label("won") == "won"
        assert i18n._("Open pipeline by stage ({currency})", currency="EUR") == "Open pipeline by stage (EUR)"


def test_an_english_chart_draws_without_warnings_too(tmp_path):
    assert not [message for message in _draw(tmp_path, "en") if "missing from font" in message]
