"""The digest's chart: revenue trend and pipeline by stage, drawn with matplotlib to a PNG file.

matplotlib is imported when a chart is drawn, never at import time (the CLI starts fast), and
only its object-oriented API with the Agg canvas is used: no pyplot, no global figure state,
safe in the scheduler's worker thread.

Titles and labels are in the current language (the recipient's, set by the caller). Chinese text
is drawn with Noto Sans SC (SIL Open Font License), which the ``pylopdf-fonts-zh-cn`` wheel ships
as a plain font file: it installs with pip into any environment, no system fonts needed. Each
text gets the family list [DejaVu Sans, the CJK font], so Latin text looks as before and only
the characters DejaVu lacks fall back to the CJK font (matplotlib 3.6+ per-glyph fallback).
Without that package, a system CJK font (Debian's fonts-noto-cjk or fonts-wqy-microhei) is used
if one is installed.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from crm_core.i18n import _

log = logging.getLogger("chatcrm.charts")

MEDIA_ENV = "CHATCRM_MEDIA_DIR"
LATIN_FAMILY = "DejaVu Sans"
# (package, file) of a pip-installed CJK font, then system families, best first.
CJK_FONT_FILES = (("pylopdf_fonts_zh_cn", "NotoSansSC-Regular.otf"),)
CJK_SYSTEM_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
)


@functools.cache
def font_families() -> tuple[str, ...]:
    """The families every chart text is drawn with: DejaVu Sans, then a CJK font if one is found."""
    from matplotlib import font_manager

    for package, name in CJK_FONT_FILES:
        try:
            path = importlib.resources.files(package) / name
        except ModuleNotFoundError:
            continue
        if path.is_file():
            # Registered once per process; matplotlib's font list is shared and this only appends.
            font_manager.fontManager.addfont(str(path))
            return (LATIN_FAMILY, font_manager.FontProperties(fname=str(path)).get_name())
    installed = {font.name for font in font_manager.fontManager.ttflist}
    for family in CJK_SYSTEM_FAMILIES:
        if family in installed:
            return (LATIN_FAMILY, family)
    log.warning("no CJK font found (pip install pylopdf-fonts-zh-cn): Chinese chart labels will show as boxes")
    return (LATIN_FAMILY,)


def stage_label(stage: object) -> str:
    """A deal stage as the chart shows it, in the current language ("won" -> 赢单)."""
    # Imported here: the reports are imported by services (digests) while crm_core.services loads.
    from crm_core.services.deals import stage_label as label

    return label(str(stage))


def media_dir(config: dict[str, str] | None = None) -> Path:
    """Where charts are written: ``CHATCRM_MEDIA_DIR``, else ``chatcrm-media`` in the temp folder
    (a chart only has to live until it is sent)."""
    configured = (config or {}).get(MEDIA_ENV)
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "chatcrm-media"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:120] or "chart"


def draw_digest_chart(
    path: Path,
    *,
    title: str,
    currency: str,
    trend: Sequence[tuple[str, int]],
    pipeline: Sequence[tuple[str, int]],
) -> Path:
    """Two panels: revenue per bucket (cents -> currency units) and open pipeline value by stage."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    families = list(font_families())
    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})

    labels = [label for label, _cents in trend]
    values = [cents / 100 for _label, cents in trend]
    left.bar(range(len(values)), values, color="#3b7dd8")
    left.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7, fontfamily=families)
    left.set_title(_("Revenue ({currency})", currency=currency), fontsize=10, fontfamily=families)
    left.grid(axis="y", alpha=0.3)

    stages = [stage_label(stage) for stage, _cents in pipeline]
    amounts = [cents / 100 for _stage, cents in pipeline]
    right.barh(range(len(amounts)), amounts, color="#2e9e6b")
    right.set_yticks(range(len(stages)), stages, fontsize=8, fontfamily=families)
    right.invert_yaxis()
    right.set_title(_("Open pipeline by stage ({currency})", currency=currency), fontsize=10, fontfamily=families)
    right.grid(axis="x", alpha=0.3)

    figure.suptitle(title, fontsize=11, fontfamily=families)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside it, then renamed over it: another process sending the same chart (the same
    # digest, the same day) reads the whole file, never one half written (it read an empty one).
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}-", suffix=".png", delete=False) as part:
        try:
            figure.savefig(part, format="png")
            part.close()
            os.replace(part.name, path)
        except BaseException:
            Path(part.name).unlink(missing_ok=True)
            raise
    return path


def chart_path(config: dict[str, str] | None, name: str) -> Path:
    return media_dir(config) / "digests" / f"{_safe_name(name)}.png"
