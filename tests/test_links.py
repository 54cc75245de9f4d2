"""intake.parsers.links: file-host links and their extraction codes, as senders write them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from intake.parsers.links import find_links

S1 = "https://pan.baidu.com/s/1AbCdEfGhIjKlMnOpQrStU"
S2 = "https://pan.baidu.com/s/1ZyXwVuTsRqPoNmLkJiHgF"


def found(text="", html=""):
    return [(l.provider, l.url, l.code) for l in find_links([text] if text else [], [html] if html else [])]


def test_baidu_app_copy_text():
    text = f"链接: {S1} 提取码: x7k2 复制这段内容后打开百度网盘手机App，操作更方便哦"
    assert found(text) == [("baidu", S1, "x7k2")]


def test_new_app_share_text_with_pwd():
    text = f"通过网盘分享的文件：项目材料.zip\n链接: {S1}?pwd=ab12 提取码: ab12\n--来自百度网盘超级会员v5的分享"
    assert found(text) == [("baidu", S1, "ab12")]


def test_pwd_parameter_alone():
    assert found(f"请下载 {S1}?pwd=Q9w8") == [("baidu", S1, "Q9w8")]


def test_share_init_surl_is_reported_as_s1():
    assert found("https://pan.baidu.com/share/init?surl=AbCdEf123 密码：k3k3") == [
        ("baidu", "https://pan.baidu.com/s/1AbCdEf123", "k3k3")]


@pytest.mark.parametrize("spelling", [
    "提取码：abcd", "提取码:abcd", "提取码 abcd", "提取码abcd", "（提取码：abcd）", "【提取码：abcd】",
    "密码: abcd", "访问码：abcd", "pwd=abcd", "PWD: abcd", "提取码：\nabcd", "提取码:“abcd”",
])
def test_code_spellings(spelling):
    assert found(f"{S1} {spelling}") == [("baidu", S1, "abcd")]


def test_code_on_the_next_line():
    assert found(f"百度网盘链接：\n{S1}\n提取码\nab3c\n谢谢") == [("baidu", S1, "ab3c")]


def test_each_code_is_bound_to_its_own_link():
    text = f"项目一：{S1} 提取码：aaaa\n项目二：{S2} 提取码：bbbb"
    assert found(text) == [("baidu", S1, "aaaa"), ("baidu", S2, "bbbb")]


def test_a_code_is_not_stolen_by_the_next_link():
    text = f"项目一：{S1}?pwd=aaaa 提取码：aaaa\n项目二：{S2}"
    assert found(text) == [("baidu", S1, "aaaa"), ("baidu", S2, None)]


def test_code_written_before_the_link():
    assert found(f"提取码：z9z9，链接：{S1}") == [("baidu", S1, "z9z9")]


def test_link_without_code():
    assert found(f"材料见 {S1} ，谢谢") == [("baidu", S1, None)]


def test_zero_width_characters_nbsp_and_full_width_forms():
    text = "链\u200b接：ｈｔｔｐｓ：／／ｐａｎ．ｂａｉｄｕ．ｃｏｍ／ｓ／１ＡｂＣ\u00a0提取码：\u200bｗｘｙｚ"
    assert found(text) == [("baidu", "https://pan.baidu.com/s/1AbC", "wxyz")]


def test_url_encoded_link_inside_a_redirect():
    text = "https://mail.qq.com/cgi-bin/readtemplate?gourl=https%3A%2F%2Fpan.baidu.com%2Fs%2F1Enc0ded%3Fpwd%3Dzz99"
    assert ("baidu", "https://pan.baidu.com/s/1Enc0ded", "zz99") in found(text)


def test_bare_domain_without_scheme():
    assert found("pan.baidu.com/s/1NoScheme 提取码 n0sc") == [("baidu", "https://pan.baidu.com/s/1NoScheme", "n0sc")]


def test_html_href_and_its_own_text_are_one_link():
    html = f'<div>链接：<a href="{S1}">{S1}</a><br>提取码：h7h7</div>'
    assert found(html=html) == [("baidu", S1, "h7h7")]


def test_same_link_in_text_and_html_listed_once_code_kept():
    text = f"链接 {S1}"
    html = f'<p><a href="{S1}?pwd=c0de">点此下载</a></p>'
    assert [(l.url, l.code) for l in find_links([text], [html])] == [(S1, "c0de")]


def test_order_of_appearance_across_providers():
    html = (f'<p><a href="https://mail.163.com/large-attachment-download/index.html?file=KEY1">项目.zip</a>'
            f' <span>(80.96M, 2026年8月17日 0:49 到期)</span></p><p>{S1} 提取码 abcd</p>'
            f'<p><a href="https://wx.mail.qq.com/ftn/download?func=3&key=K&code=C&k=X">视频.mp4</a></p>')
    links = find_links([], [html])
    assert [l.provider for l in links] == ["netease", "baidu", "qq"]
    assert (links[0].size, links[0].expires) == ("80.96M", "2026年8月17日 0:49")


@pytest.mark.parametrize("url,provider", [
    ("https://mail.163.com/large-attachment-download/index.html?p=X123&file=abc", "netease"),
    ("http://mail.126.com/large-attachment-download/index.html?file=abc", "netease"),
    ("https://dashi.163.com/html/cloud-attachment-download?key=abcdef", "netease"),
    ("https://mail.qq.com/cgi-bin/ftnExs_download?k=abc&t=exs_ftn_download&code=1234", "qq"),
    ("https://wx.mail.qq.com/ftn/download?func=3&key=abc&code=1&k=2", "qq"),
    ("https://iwx.mail.qq.com/ftn/download?func=4&key=abc&code=1", "qq"),
    ("https://www.aliyundrive.com/s/AbCdEf", "other"),
    ("https://www.alipan.com/s/AbCdEf", "other"),
    ("https://pan.quark.cn/s/abcdef", "other"),
    ("https://www.123pan.com/s/abc-def", "other"),
    ("https://wwi.lanzoui.com/iAbCd", "other"),
    ("https://1drv.ms/u/s!AbCdEf", "other"),
    ("https://onedrive.live.com/redir?resid=1&authkey=2", "other"),
    ("https://cloud.189.cn/t/AbCd", "other"),
])
def test_providers(url, provider):
    assert found(f"下载：{url}") == [(provider, url, None)]


def test_ordinary_web_links_are_not_file_hosts():
    assert found("单位网站 https://www.acftu.org/ 和 https://mail.163.com/ 以及 http://u.163.com/abc") == []


# ------------------------------------------------------------------ found in review

@pytest.mark.parametrize("text", [
    f"链接：{S1}，提取码：ab12", f"链接：{S1}；提取码：ab12", f"链接：{S1}提取码：ab12",
    f"{S1} 提取码为：ab12", f"{S1} 提取码是ab12", f"{S1} 提 取 码：ab12",
])
def test_codes_after_chinese_punctuation_and_phrasings(text):
    assert found(text) == [("baidu", S1, "ab12")]


def test_long_blank_runs_do_not_hang():
    import time

    started = time.monotonic()
    found(f"{S1} 提取码" + " " * 5000 + "\n" + "密码" + "\u3000" * 5000)
    assert time.monotonic() - started < 2


def test_inline_tags_do_not_split_links_or_codes():
    html = f'<p><span>{S1[:-5]}</span><span>{S1[-5:]}</span> 提取码：<b>ab</b><b>12</b></p>'
    assert found(html=html) == [("baidu", S1, "ab12")]


def test_another_hosts_code_is_not_given_to_baidu():
    text = f"夸克：https://pan.quark.cn/s/abc 提取码：qqqq\n百度：{S1}"
    assert found(text) == [("other", "https://pan.quark.cn/s/abc", None), ("baidu", S1, None)]


def test_percent_encoded_links_are_listed_once_as_written():
    text = "OneDrive: https://onedrive.live.com/redir?resid=ABC%21123&authkey=%21AbC"
    assert found(text) == [("other", "https://onedrive.live.com/redir?resid=ABC%21123&authkey=%21AbC", None)]


def test_share_ids_keep_their_case():
    assert [u for _, u, _ in found(f"{S1} 和 {S1.lower()}")] == [S1, S1.lower()]


@pytest.mark.parametrize("url,expected", [
    ("https://pan.baidu.com/wap/init?surl=AbC", "https://pan.baidu.com/s/1AbC"),
    ("https://pan.baidu.com/share/link?shareid=123&uk=456", "https://pan.baidu.com/share/link?shareid=123&uk=456"),
])
def test_other_baidu_share_forms(url, expected):
    assert found(f"{url} 提取码 ab12") == [("baidu", expected, "ab12")]


def test_the_word_code_in_another_url_is_not_a_code():
    assert found(f"{S1}\n系统地址 https://example.gov.cn/login?code=abcd") == [("baidu", S1, None)]


# ------------------------------------------------------------------ hostile bodies: bounded work

def _in_child(code: str) -> str:
    """Run ``code`` in a child Python with a generous timeout: the quadratic scanning
    it replaces took minutes on these bodies (7 minutes and more for the first)."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_one_megabyte_of_glued_urls_is_scanned_in_one_pass():
    # "http://a.cn/" 90,000 times: each candidate used to be read to the end of the run
    assert _in_child("from intake.parsers.links import find_links\n"
                     "print(len(find_links(['http://a.cn/' * 90000], [])))") == "0"


def test_a_hundred_thousand_baidu_links_are_found_with_their_codes():
    # every link was checked against every link found before it: 30,000 took 22 s
    out = _in_child(
        "from intake.parsers.links import find_links\n"
        "text = ''.join(f'项目{i}：https://pan.baidu.com/s/1Share{i:06d} 提取码：{i % 10000:04d}\\n' for i in range(100000))\n"
        "links = find_links([text], [])\n"
        "print(len(links), links[0].code, links[-1].url, links[-1].code)")
    assert out == "100000 0000 https://pan.baidu.com/s/1Share099999 9999"


def test_a_wrapped_link_is_still_found_inside_its_wrapper():
    text = f"https://link.zhihu.com/?target={S1} 提取码：ab12"
    assert found(text) == [("baidu", S1, "ab12")]


def test_a_file_host_link_is_reported_to_the_end_of_its_run():
    # judged on its own part (up to the next "http"), reported as written
    url = "https://mail.163.com/large-attachment-download/index.html?file=K&back=https://mail.163.com/"
    assert found(f"下载：{url} 谢谢") == [("netease", url, None)]
