"""intake.parsers.text: Word's 字 count and loose name comparison."""

from intake.parsers.text import count_zi, squash, strip_numbering


def test_cjk_characters_count_one_each():
    assert count_zi("导师简介") == 4


def test_latin_and_digit_runs_count_one_each():
    assert count_zi("Hello world 2024") == 3
    assert count_zi("10kV线路") == 3  # '10kV' is one run, then 2 CJK


def test_full_width_punctuation_counts_half_width_does_not():
    assert count_zi("好，好。") == 4
    assert count_zi("好,好.") == 2
    assert count_zi("“引号”…—") == 6  # ambiguous-width marks Word counts


def test_white_space_is_not_counted():
    assert count_zi("  安 全\t生\n产　") == 4  # U+3000 ideographic space too


def test_numbering_prefixes_are_stripped():
    for name in ("1.安全生产", "01-安全生产", "项目一：安全生产", "（一）安全生产", "一、安全生产", "第一项 安全生产"):
        assert strip_numbering(name) == "安全生产", name
    assert strip_numbering("2024年新工艺") == "2024年新工艺"


def test_squash_ignores_space_width_and_punctuation():
    assert squash("《数控 机床》快速对刀法（一）") == squash("数控机床快速对刀法(一)")
    assert squash("ＡＢＣ课程") == squash("abc课程")
    assert squash("数控机床") != squash("数控车床")


def test_joined_latin_words_count_once_and_ling_is_cjk():
    assert count_zi("3.14") == 1 and count_zi("COVID-19") == 1 and count_zi("e-mail") == 1
    assert count_zi("二〇〇八年") == 5
    assert count_zi("v1.0版") == 2  # 'v1.0' then 版
    assert count_zi("end. Next") == 2  # a full stop before a space ends the word
