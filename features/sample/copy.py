"""The SYNTHETIC sample's copy: a title and a description per SKU, in Chinese, usually with English.

The copy is one of the two ways a model can see the hidden attributes (``world``), so every
attribute that drives sales is always written in Chinese (material, style, colour, pattern, the
category and the season phrase) and English is added for ~75% of the fields, like the mixed copy of
a Chinese marketplace. Three description templates and filler phrases keep the text from being one
fixed sentence a model could parse by position.

All randomness comes from the caller's Generator, drawn up front in one fixed order
(``write_copy``), so the same seed gives the same text.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from features.sample.world import (
    CATEGORIES,
    COLOURS,
    MATERIALS,
    PATTERNS,
    STYLES,
    Category,
    Colour,
    Material,
    Pattern,
    Style,
)

_FILLERS = (
    ("百搭", "easy to match"), ("舒适透气", "breathable"), ("显瘦", "flattering"), ("ins风", "ins style"),
    ("日常通勤", "daily commute"), ("情侣款", "couple style"), ("做工精致", "fine workmanship"),
    ("网红同款", "trending"), ("大码可选", "plus sizes"), ("亲肤柔软", "soft touch"),
)


class _Words(NamedTuple):
    """The words one SKU's copy is made of (Chinese and English, per attribute)."""

    cat: Category
    col: Colour
    pat: Pattern
    mat: Material
    sty: Style
    season_cn: str
    season_word: str
    season_en: str
    year: str


def _season_words(month: int) -> tuple[str, str, str]:
    """(new-season phrase, season, English season) for a launch month."""
    if month in (3, 4, 5):
        return "春季新款", "春季", "spring"
    if month in (6, 7, 8):
        return "夏季新款", "夏季", "summer"
    if month in (9, 10, 11):
        return "秋季新款", "秋季", "autumn"
    return "秋冬新款", "冬季", "winter"


def _words(row: tuple) -> _Words:
    """Look up the attribute words of one attributes row (a ``DataFrame.itertuples`` row)."""
    season_cn, season_word, season_en = _season_words(int(row.month))
    return _Words(
        cat=CATEGORIES[row.category], col=COLOURS[row.colour], pat=PATTERNS[row.pattern],
        mat=MATERIALS[row.material], sty=STYLES[row.style],
        season_cn=season_cn, season_word=season_word, season_en=season_en, year=row.launch_date[:4],
    )


def _title(w: _Words, english: bool) -> str:
    """Year, season phrase and every attribute in Chinese; then in English if ``english``."""
    title = f"{w.year}{w.season_cn} {w.col.cn}{w.pat.cn}{w.mat.cn}{w.sty.cn}{w.cat.name}"
    if english:
        title += (f" {w.col.en.title()} {w.pat.en.title()} {w.mat.en.title()} {w.sty.en.title()}"
                  f" {w.cat.en.title()}")
    return title


def _description(
    w: _Words, template: int, english: np.ndarray, f1: tuple[str, str], f2: tuple[str, str]
) -> str:
    """One of three templates; ``english[1]`` adds material/style, ``english[2]`` colour words."""
    col, pat, mat, sty, cat = w.col, w.pat, w.mat, w.sty, w.cat
    en_mat = f" {mat.en}" if english[1] else ""
    en_sty = f" {sty.en}" if english[1] else ""
    en_col = f" ({col.en}, {pat.en})" if english[2] else ""
    if template == 0:
        return (f"{mat.cn}{en_mat}面料，{pat.cn}设计，{sty.cn}{en_sty}版型。"
                f"颜色：{col.cn}{en_col}。{f1[0]}，{f2[0]}，{w.season_cn}，适合{w.season_word}穿着 ({w.season_en})。")
    if template == 1:
        return (f"{w.season_cn} {cat.name} {cat.en}：{col.cn}{pat.cn}{en_col}，"
                f"采用{mat.cn}{en_mat}，{sty.cn}风格{en_sty}，{f1[0]} {f1[1]}。")
    return (f"【{sty.cn}{en_sty}】{col.cn}{en_col} {pat.cn}款 {cat.name}，"
            f"材质 {mat.cn}{en_mat}，{f1[0]}、{f2[0]}。{w.season_cn} new arrival for {w.season_en}.")


def write_copy(rng: np.random.Generator, attributes: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Titles and descriptions for the rows of ``attributes`` (from ``world.draw_attributes``).

    The three draws (which fields get English, the template, two fillers) are made for all rows at
    once before any text is built: their order is part of the sample's bytes.
    """
    n = len(attributes)
    english = rng.random((n, 3)) < 0.75
    template = rng.integers(0, 3, n)
    fillers = rng.integers(0, len(_FILLERS), (n, 2))
    titles: list[str] = []
    descriptions: list[str] = []
    for i, row in enumerate(attributes.itertuples(index=False)):
        w = _words(row)
        titles.append(_title(w, bool(english[i, 0])))
        f1, f2 = _FILLERS[fillers[i, 0]], _FILLERS[fillers[i, 1]]
        descriptions.append(_description(w, int(template[i]), english[i], f1, f2))
    return titles, descriptions
