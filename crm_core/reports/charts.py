"""The digest's chart: revenue trend and pipeline by stage, drawn with matplotlib to a PNG file.

matplotlib is imported when a chart is drawn, never at import time (the CLI starts fast), and
only its object-oriented API with the Agg canvas is used: no pyplot, no global figure state,
safe in the scheduler's worker thread.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

MEDIA_ENV = "CHATCRM_MEDIA_DIR"


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

    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})

    labels = [label for label, _ in trend]
    values = [cents / 100 for _, cents in trend]
    left.bar(range(len(values)), values, color="#3b7dd8")
    left.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    left.set_title(f"Revenue ({currency})", fontsize=10)
    left.grid(axis="y", alpha=0.3)

    stages = [stage for stage, _ in pipeline]
    amounts = [cents / 100 for _, cents in pipeline]
    right.barh(range(len(amounts)), amounts, color="#2e9e6b")
    right.set_yticks(range(len(stages)), stages, fontsize=8)
    right.invert_yaxis()
    right.set_title(f"Open pipeline by stage ({currency})", fontsize=10)
    right.grid(axis="x", alpha=0.3)

    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def chart_path(config: dict[str, str] | None, name: str) -> Path:
    return media_dir(config) / "digests" / f"{_safe_name(name)}.png"
