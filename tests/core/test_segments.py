"""SMS segment counting (3GPP TS 23.038 / 23.040), without any I/O."""

from __future__ import annotations

import pytest

from receiver.core.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_SEGMENTS,
    Segmentation,
    count_segments,
)

EMOJI = "\N{GRINNING FACE}"  # outside the BMP: a surrogate pair, 2 UTF-16 code units


def test_the_gsm7_tables_have_their_documented_sizes():
    assert len(GSM7_BASIC) == 127  # 128 positions less the escape
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", Segmentation("GSM-7", 0, 1), id="empty"),
        pytest.param("Hello", Segmentation("GSM-7", 5, 1), id="short"),
        pytest.param("a" * 160, Segmentation("GSM-7", 160, 1), id="gsm 160 fits one"),
        pytest.param("a" * 161, Segmentation("GSM-7", 161, 2), id="gsm 161 takes two"),
        pytest.param("a" * 306, Segmentation("GSM-7", 306, 2), id="gsm 2x153"),
        pytest.param("a" * 307, Segmentation("GSM-7", 307, 3), id="gsm 307 takes three"),
        pytest.param("a" * 1530, Segmentation("GSM-7", 1530, 10), id="gsm 10x153"),
        pytest.param("é£¥ÑüΔΩ@ and 01234", Segmentation("GSM-7", 18, 1), id="gsm accents+greek"),
        pytest.param("€", Segmentation("GSM-7", 2, 1), id="euro is an extension char"),
        pytest.param("[x]{y}|~^\\\f€", Segmentation("GSM-7", 22, 1), id="all extension chars"),
        pytest.param("€" * 80, Segmentation("GSM-7", 160, 1), id="80 euros fit one"),
        pytest.param("€" * 81, Segmentation("GSM-7", 162, 2), id="81 euros take two"),
        # 152 plain + one extension char: 154 septets, and the escape pair is not split.
        pytest.param("a" * 152 + "€" + "a" * 10, Segmentation("GSM-7", 164, 2), id="no split"),
        pytest.param("a" * 152 + "€" * 77, Segmentation("GSM-7", 306, 3), id="pair moves on"),
        pytest.param("ж", Segmentation("UCS-2", 1, 1), id="cyrillic"),
        pytest.param("ж" * 70, Segmentation("UCS-2", 70, 1), id="ucs2 70 fits one"),
        pytest.param("ж" * 71, Segmentation("UCS-2", 71, 2), id="ucs2 71 takes two"),
        pytest.param("ж" * 134, Segmentation("UCS-2", 134, 2), id="ucs2 2x67"),
        pytest.param("ж" * 135, Segmentation("UCS-2", 135, 3), id="ucs2 135 takes three"),
        pytest.param("a" * 69 + "ж", Segmentation("UCS-2", 70, 1), id="one char makes ucs2"),
        pytest.param("€ ж", Segmentation("UCS-2", 3, 1), id="extension counts 1 in ucs2"),
        pytest.param(EMOJI, Segmentation("UCS-2", 2, 1), id="emoji is 2 units"),
        pytest.param(EMOJI * 35, Segmentation("UCS-2", 70, 1), id="35 emoji fit one"),
        pytest.param(EMOJI * 36, Segmentation("UCS-2", 72, 2), id="36 emoji take two"),
        # 66 units + an emoji would be 68 > 67: the pair starts the next segment.
        pytest.param("ж" * 66 + EMOJI * 2, Segmentation("UCS-2", 70, 1), id="emoji fits lone"),
        pytest.param("ж" * 66 + EMOJI * 3, Segmentation("UCS-2", 72, 2), id="emoji not split"),
        pytest.param("ж" * 66 + EMOJI * 34, Segmentation("UCS-2", 134, 3), id="pairs pack"),
        pytest.param("ç", Segmentation("UCS-2", 1, 1), id="small c cedilla is not gsm"),
    ],
)
def test_segments(text, expected):
    assert count_segments(text) == expected


def test_the_maximum_is_ten_segments():
    assert MAX_SEGMENTS == 10
    assert count_segments("a" * 1531).segments == 11
    assert count_segments("ж" * 670).segments == 10
    assert count_segments("ж" * 671).segments == 11
