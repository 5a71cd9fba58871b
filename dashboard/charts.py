"""Server-side charts: SVG drawn by matplotlib (already used by ``make report``), put in the
page as a ``data:`` image -- no JavaScript and nothing fetched from elsewhere (schools may be
offline); as an image its own styles apply although the page's CSP forbids inline styles."""
from __future__ import annotations

import base64
import io
from typing import Dict, List, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small files, page fonts


def bar_chart(title: str, labels: Sequence[str], series: Dict[str, List[float]], ylabel: str = "") -> str:
    """Grouped bars, one group per label, as a ``data:image/svg+xml`` URI; an empty chart says
    "no data"."""
    fig, ax = plt.subplots(figsize=(5.2, 2.6))
    try:
        if labels and series:
            width = 0.8 / len(series)
            for j, (name, values) in enumerate(series.items()):
                ax.bar([i + j * width - 0.4 + width / 2 for i in range(len(labels))],
                       [v or 0 for v in values], width=width, label=name)
            ax.set_xticks(list(range(len(labels))))
            ax.set_xticklabels(labels, rotation=30 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center",
                               fontsize=9)
            if len(series) > 1:
                ax.legend(fontsize=9)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
    finally:
        plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue().encode("utf-8")).decode("ascii")
