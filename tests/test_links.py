"""intake.parsers.links: file-host links and their extraction codes, as senders write them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from datetime import datetime, timezone

import pytest

from intake.kernel.report import BEIJING
from intake.parsers.links import by_expiry, expiry, find_links

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


# ------------------------------------------------------------------ links in quoted text (issue 12 §5)

QQ_HEADER = ("------------------ 原始邮件 ------------------\n"
             "发件人: \"示范单位\"<unit@qq.com>;\n发送时间: 2026年5月6日(星期三) 上午10:02\n"
             "收件人: \"五小申报\"<intake@163.com>;\n主题: 五小申报材料\n\n")


def marked(text="", html=""):
    return [(l.url, l.code, l.quoted) for l in find_links([text] if text else [], [html] if html else [])]


def test_a_qq_reply_quotes_the_earlier_link_and_adds_a_new_one():
    text = f"补充一个视频：{S2} 提取码：bbbb\n\n{QQ_HEADER}材料链接：{S1} 提取码：aaaa\n"
    assert marked(text) == [(S2, "bbbb", False), (S1, "aaaa", True)]


def test_qq_text_parts_with_nbsp_entities_in_the_separator():
    text = f"请查收\n------------------&nbsp;原始邮件&nbsp;------------------\n旧链接 {S1}"
    assert marked(text) == [(S1, None, True)]


def test_lines_starting_with_gt_are_quoted_and_only_they():
    text = f"> 上次的链接 {S1}\n> 提取码 aaaa\n\n新的链接 {S2} 提取码 bbbb"
    assert marked(text) == [(S1, "aaaa", True), (S2, "bbbb", False)]


@pytest.mark.parametrize("attribution", [
    "在 2026-05-06 10:02:03，\"示范单位\" <unit@163.com> 写道：",
    "示范单位 <unit@gmail.com> 于2026年5月6日周三 上午10:02写道：",
    "At 2026-05-06 10:02:03, \"示范单位\" <unit@163.com> wrote:",
    "On Wed, May 6, 2026 at 10:02 AM 示范单位 <unit@gmail.com> wrote:",
])
def test_everything_after_an_attribution_line_is_quoted(attribution):
    text = f"已更新：{S2}\n\n{attribution}\n原链接：{S1} 提取码 aaaa\n谢谢"
    assert marked(text) == [(S2, None, False), (S1, "aaaa", True)]


def test_an_outlook_header_block_starts_the_quote():
    text = (f"新链接 {S2}\n\n发件人: 示范单位 <unit@example.cn>\n发送时间: 2026年5月6日 10:02\n"
            f"收件人: intake@163.com\n主题: 五小申报\n\n{S1}")
    assert marked(text) == [(S2, None, False), (S1, None, True)]


def test_a_mail_master_plain_text_reply():
    text = (f"已经补充：{S2}\n\n---- 回复的原邮件 ----\n| 发件人 | 示范单位<unit@163.com> |\n"
            f"| 日期 | 2026年05月06日 10:02 |\n{S1}")
    assert marked(text) == [(S2, None, False), (S1, None, True)]


def test_the_same_link_quoted_and_in_the_replys_own_text_is_not_quoted():
    text = f"再发一次：{S1} 提取码：aaaa\n\n{QQ_HEADER}链接：{S1} 提取码：aaaa"
    assert marked(text) == [(S1, "aaaa", False)]
    quoted_in_html = f"<blockquote>{S1}</blockquote>"
    assert [(l.url, l.quoted) for l in find_links([f"再发一次：{S1}"], [quoted_in_html])] == [(S1, False)]


def test_a_163_webmail_reply_in_html():
    html = (f'<div>新的链接：<a href="{S2}">{S2}</a> 提取码：bbbb</div><div id="divNeteaseMailCard"></div>'
            '<p>在 2026-05-06 10:02:03，"示范单位" &lt;unit@163.com&gt; 写道：</p>'
            '<blockquote id="isReplyContent" style="PADDING-LEFT: 1ex; MARGIN: 0px 0px 0px 0.8ex; '
            f'BORDER-LEFT: #ccc 1px solid"><div>链接：<a href="{S1}">{S1}</a><br>提取码：aaaa</div></blockquote>')
    assert marked(html=html) == [(S2, "bbbb", False), (S1, "aaaa", True)]


def test_a_mail_master_html_reply_keeps_the_quoted_large_attachment_details():
    big = "https://mail.163.com/large-attachment-download/index.html?p=X-NETEASE-HUGE-ATTACHMENT&file=K1"
    html = (f'<div>补充材料：<a href="{S2}">百度网盘</a> 提取码 bbbb</div>'
            '<div class="J-reply ntes-mailmaster-quote" style="padding-top: 1px"><div>---- 回复的原邮件 ----</div>'
            '<table><tr><td>发件人</td><td>示范单位 &lt;unit@163.com&gt;</td></tr></table>'
            f'<div><b>从网易163邮箱发来的超大附件</b><div><a href="{big.replace("&", "&amp;")}">路演视频.mp4</a>'
            ' <span>(80.96M, 2026年8月17日 0:49 到期)</span></div></div></div>')
    links = find_links([], [html])
    assert [(l.provider, l.quoted) for l in links] == [("baidu", False), ("netease", True)]
    assert (links[1].url, links[1].size, links[1].expires) == (big, "80.96M", "2026年8月17日 0:49")


@pytest.mark.parametrize("container", [
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">Earlier:</div><blockquote class="gmail_quote">{}</blockquote></div>',
    '<div id="reply139content"><div>{}</div></div>',
    '<blockquote id="gmail-m_4228553645585852321isReplyContent">{}</blockquote>',
    '<blockquote id="ntes-iosmail-quote">{}</blockquote>',
    '<article><div contenteditable="false"><div>原始邮件</div><hr></div><table><tr><td><div><span>From:</span>'
    '<span>示范单位</span></div><div><span>Sent Time:</span><span>May 6, 2026 10:02</span></div></td></tr>'
    '</table><div>{}</div></article>',
    '<div id="divRplyFwdMsg"><b>发件人:</b> 示范单位<br><b>发送时间:</b> 2026年5月6日 10:02<br>'
    '<b>收件人:</b> intake@163.com</div><div>{}</div>',
])
def test_quote_containers_of_chinese_and_other_clients(container):
    html = f"<div>新的：{S2}</div>" + container.format(f'<a href="{S1}">链接</a>')
    assert marked(html=html) == [(S2, None, False), (S1, None, True)]


@pytest.mark.parametrize("text,html", [
    (f"From: 示范单位（五小申报）\n材料链接：{S1}", ""),  # a From: line with no header block after it
    (f"正如通知中写道:\n{S1}", ""),  # an attribution needs a date or an address
    ("", f'<blockquote style="margin:0 0 0 40px;border:none;padding:0px"><div>{S1}</div></blockquote>'),  # indent
    ("", f'<div id="divNeteaseMailCard"></div><div>{S1}</div>'),  # the signature placeholder
])
def test_what_is_not_quoted(text, html):
    assert marked(text, html) == [(S1, None, False)]


def test_a_quoted_link_in_a_url_encoded_wrapper_is_quoted_too():
    wrapped = "https://mail.qq.com/cgi-bin/readtemplate?gourl=https%3A%2F%2Fpan.baidu.com%2Fs%2F1Enc0ded"
    text = f"新链接 {S2}\n> {wrapped}"
    found = {(l.url, l.quoted) for l in find_links([text], [])}
    assert found == {(S2, False), ("https://pan.baidu.com/s/1Enc0ded", True)}


def test_quoted_is_not_in_the_contracts_link_object():
    (link,) = find_links([f"> {S1}"], [])
    assert link.quoted and link.to_json() == {"provider": "baidu", "url": S1, "code": None}


# ------------------------------------------------------------------ expiry order (issue 12 §4)

def test_links_expiring_soonest_are_fetched_first():
    def big(key, when):
        return (f'<p><a href="https://mail.163.com/large-attachment-download/index.html?file={key}">{key}.mp4</a>'
                f' <span>(10.00M, {when} 到期)</span></p>')
    html = (f"<p>{S1} 提取码 abcd</p>" + big("LATE", "2026年8月17日 0:49") + big("SOON", "2026年5月7日 9:05")
            + big("DATE", "2026年5月7日") + '<p><a href="https://wx.mail.qq.com/ftn/download?func=3&key=Q&code=C">q</a></p>')
    ordered = by_expiry(find_links([], [html]))
    assert [l.url.rsplit("=", 1)[-1] if l.provider == "netease" else l.provider for l in ordered] == [
        "DATE", "SOON", "LATE", "baidu", "qq"]
    assert expiry(ordered[1]) == datetime(2026, 5, 7, 9, 5, tzinfo=BEIJING)
    assert expiry(ordered[1]).astimezone(timezone.utc).hour == 1


def test_an_impossible_expiry_date_is_no_expiry():
    link = find_links(["https://mail.163.com/large-attachment-download/index.html?file=K (1M, 2026年2月30日 到期)"], [])[0]
    assert link.expires == "2026年2月30日" and expiry(link) is None and by_expiry([link]) == [link]


def test_quote_detection_is_linear_on_hostile_bodies():
    # a From: line on every line, '>' lines glued to links, and a deep tree of blockquotes
    out = _in_child(
        "from intake.parsers.links import find_links\n"
        "text = 'From: x\\n' * 200000 + ''.join(f'> https://pan.baidu.com/s/1Q{i:06d}\\n' for i in range(50000))\n"
        "html = '<blockquote>' * 2000 + 'https://pan.baidu.com/s/1Deep' + '</blockquote>' * 2000\n"
        "links = find_links([text], [html])\n"
        "print(len(links), all(l.quoted for l in links))")
    assert out == "50001 True"
