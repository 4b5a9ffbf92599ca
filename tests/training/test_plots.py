"""The run's figures: drawn without pyplot state, and Chinese category names never turn into empty
boxes (a CJK font is used when the machine has one, escaped code points otherwise)."""

from __future__ import annotations

import io
import warnings

import pandas as pd
import pytest
from PIL import Image

from training import plots

HOLDOUT = pd.DataFrame({
    "category": ["T恤", "包", "外套", "T恤", "hat"],
    "actual": [10.0, 20.0, 30.0, 40.0, 5.0],
    "p10": [5.0, 10.0, 20.0, 30.0, 2.0],
    "p50": [9.0, 22.0, 28.0, 41.0, 6.0],
    "p90": [15.0, 30.0, 40.0, 50.0, 9.0],
})


def _render(fig) -> Image.Image:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("name", sorted(plots.ALL))
def test_figures_render_without_missing_glyphs(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" is a UserWarning
        image = _render(plots.ALL[name](HOLDOUT))
    assert image.size[0] > 200 and image.size[1] > 150


def test_figures_leave_pyplot_alone() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.error_by_category(HOLDOUT)
    assert plt.get_fignums() == before  # nothing to close, nothing leaks in long jobs


def test_category_labels_without_a_cjk_font_are_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "cjk_family", lambda: None)
    assert plots.label("T恤") == "T\\u6064"
    assert plots.label("hat") == "hat"
    assert plots.style() == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.error_by_category(HOLDOUT)
        _render(fig)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "T\\u6064" in labels and all(label.isascii() for label in labels)


def test_category_labels_with_a_cjk_font_are_kept() -> None:
    if plots.cjk_family() is None:  # this machine has no CJK font: labels are escaped (tested above)
        assert plots.label("包") == "\\u5305"
        return
    assert plots.label("包") == "包"
    assert plots.style()["font.family"][1] == plots.cjk_family()
    fig = plots.error_by_category(HOLDOUT)
    assert {"T恤", "包", "外套", "hat"} == {t.get_text() for t in fig.axes[0].get_yticklabels()}


def test_category_wape_is_per_category() -> None:
    wape = plots.category_wape(HOLDOUT)
    assert wape["T恤"] == pytest.approx((1 + 1) / 50)
    assert wape["包"] == pytest.approx(2 / 20)
    assert list(wape.index) == sorted(wape.index, key=wape.get)  # smallest error first
