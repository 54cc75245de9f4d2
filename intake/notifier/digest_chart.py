"""The digest's chart: accepted projects against quota per unit, a PNG made with
matplotlib's Agg canvas (no display, no pyplot state shared between threads).

Unit names are Chinese: the chart needs a CJK font from Debian's packages
(``fonts-wqy-microhei``, installed by deploy/bootstrap.sh; Noto CJK and others are
taken too). Without one the names would be empty boxes, so the daemon says so in
its log and the digest's tables still carry every number.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from intake.notifier.digest_data import UnitLine

if TYPE_CHECKING:  # typing only: matplotlib is imported when a chart is drawn
    from matplotlib.axes import Axes
    from matplotlib.font_manager import FontProperties

log = logging.getLogger("intake")

# Families that hold Simplified Chinese, most fitting first (the first is the one
# bootstrap.sh installs; the Noto and Source Han collections name their SC face)
CJK_FAMILIES = (
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
    "Noto Sans CJK JP", "Noto Serif CJK SC", "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN",
)
SAMPLE = "湖北省总工会"  # characters every unit name is made of
CJK_PACKAGE = "fonts-wqy-microhei"


@lru_cache(maxsize=1)
def find_cjk_font() -> Path | None:
    """A font file that draws Chinese, from matplotlib's font list, else from the
    system's font folders (a font installed after matplotlib cached its list)."""
    # imported here: matplotlib is large and only a digest needs it, not every round
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    known = {entry.name: Path(entry.fname) for entry in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return known[family]
    for path in font_manager.findSystemFonts():
        try:
            font = FT2Font(path)
        except (OSError, RuntimeError, ValueError):
            continue  # a broken or unsupported file among the system's fonts
        if font.family_name in CJK_FAMILIES or all(font.get_char_index(ord(c)) for c in SAMPLE):
            font_manager.fontManager.addfont(path)
            return Path(path)
    return None


def _font() -> FontProperties | None:
    # imported here with the rest of matplotlib (see find_cjk_font)
    from matplotlib.font_manager import FontProperties

    path = find_cjk_font()
    if path is None:
        log.warning("no CJK font found: the digest chart's unit names will not render; "
                    "install one (apt-get install %s)", CJK_PACKAGE)
        return None
    return FontProperties(fname=str(path))


def quota_chart(units: list[UnitLine], title: str = "各单位通过项目数与名额") -> bytes:
    """A horizontal bar per unit: its quota (outline) and its accepted projects (filled),
    labelled "通过/名额". Units without a quota show their accepted projects alone."""
    # imported here: matplotlib only when a chart is drawn (the Agg canvas, no pyplot)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    font = _font()
    rows = [u for u in units if u.known][::-1]  # barh draws bottom-up: first unit on top
    height = 2.0 + 0.34 * max(len(rows), 1)  # inches: title, axis and legend, then a row per unit
    figure = Figure(figsize=(8.0, height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if not rows:
        axes.text(0.5, 0.5, "尚未导入单位名额（intake units import）", ha="center", va="center",
                  fontproperties=font, fontsize=12, transform=axes.transAxes)
        axes.set_axis_off()
    else:
        _bars(axes, rows, font)
    axes.set_title(title, fontproperties=font, fontsize=13)
    if rows:  # the legend under the axis, in a strip of its own
        figure.legend(prop=font, loc="lower center", ncol=2, frameon=False)
    figure.tight_layout(rect=(0, 0.35 / height, 1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _bars(axes: Axes, rows: list[UnitLine], font: FontProperties | None) -> None:
    # imported here with the rest of matplotlib (see find_cjk_font)
    from matplotlib.ticker import MaxNLocator

    positions = list(range(len(rows)))
    quotas = [u.quota or 0 for u in rows]
    accepted = [u.accepted for u in rows]
    colours = ["#c0392b" if u.quota is not None and u.accepted > u.quota else
               "#2e8b57" if u.quota is not None and u.accepted == u.quota else "#2f6db5" for u in rows]
    axes.barh(positions, quotas, height=0.7, color="#eef1f5", edgecolor="#8a94a6", label="名额")
    axes.barh(positions, accepted, height=0.42, color=colours, label="通过项目")
    axes.set_yticks(positions)
    axes.set_yticklabels([u.name for u in rows], fontproperties=font, fontsize=10)
    widest = max(quotas + accepted + [1])
    for y, unit in zip(positions, rows):
        label = f"{unit.accepted}/{unit.quota}" if unit.quota is not None else f"{unit.accepted}（未设名额）"
        axes.text(max(unit.accepted, unit.quota or 0) + widest * 0.01, y, label, va="center",
                  fontproperties=font, fontsize=9)
    axes.set_xlim(0, widest * 1.18)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # projects come whole
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
