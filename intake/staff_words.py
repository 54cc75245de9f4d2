"""The words staff read: verdict and state names in Chinese, times in Beijing time, and a
recorded failure (a message's or an outgoing mail's ``last_error``, a status row's
detail) told without the program's class names.

The daemon records a failure as ``KindName: what happened`` (``PermanentError: …``,
``fetching, attempt 2 of 10: NetworkError: …``) because the kind decides what happens
next; staff see the kind in Chinese and the detail as it was said (often a server's
own answer, which is never rewritten).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone

from intake.kernel.report import BEIJING

VERDICT_NAMES = {"accepted": "通过", "partial": "部分通过", "rejected": "未通过", "needs_review": "待人工核对",
                 "ignored": "已忽略"}
PROJECT_VERDICT_NAMES = {"accepted": "通过", "rejected": "未通过"}
STATE_NAMES = {"received": "已收到", "fetching": "下载链接文件中", "unpacking": "解包审核中", "judged": "已审核",
               "done": "已完成", "failed": "失败待重试", "quarantined": "已隔离"}
OUTBOX_STATE_NAMES = {"queued": "待发送", "sending": "正在发送", "sent": "已发送", "failed": "被拒收",
                      "held": "已暂缓"}
SEVERITY_NAMES = {"error": "错误", "warning": "提醒", "info": "说明"}
MAIL_KIND_NAMES = {"reply": "回复", "digest": "每日汇总", "alert": "告警"}
OVERRIDE_NAMES = {"accepted": "人工改判为通过", "rejected": "人工改判为未通过"}

# the kinds of failure the daemon records (intake.kernel.errors and its subclasses);
# any other name that ends in Error or Exception is a fault of the program itself
KIND_NAMES = {
    "PermanentError": "无法自动恢复的错误", "TransientError": "暂时性故障", "IntakeError": "处理失败",
    "ConfigError": "设置有误", "LoginRejected": "登录被拒绝", "NetworkError": "网络故障",
    "NeedsStaff": "需要工作人员处理", "SenderProblem": "发件人提供的内容有误", "AuthDead": "网盘登录已失效",
    "StaleSign": "网盘签名已过期", "ConnectionLost": "连接中断", "DeliveryUncertain": "发送结果不明",
    "SenderRefused": "服务器拒绝发件人", "TimeoutError": "超时", "MemoryError": "内存不足",
    # what the network libraries raise, named in a detail such as "answer cut (ReadTimeoutError)"
    "ReadTimeoutError": "读取超时", "ConnectTimeoutError": "连接超时", "ConnectionResetError": "连接被重置",
    "ConnectionRefusedError": "连接被拒绝", "ConnectionError": "连接错误", "ProtocolError": "协议错误",
    "SSLError": "TLS 错误", "ChunkedEncodingError": "传输中断", "OSError": "系统错误",
}
_KIND = re.compile(r"(?<![\w.])([A-Z][A-Za-z0-9]*(?:Error|Exception|Rejected|Lost|Uncertain|Problem|Dead|Sign|"
                   r"Staff|Refused|Move|Exit|Interrupt)): ")
_NAMED = re.compile(r" ?\(([A-Z][A-Za-z0-9]*(?:Error|Exception))\)")  # "(ReadTimeoutError)"
_FRAMES = [  # how the daemon frames a failure, in Chinese
    (re.compile(r"fetching, attempt (\d+) of (\d+): "), r"第 \1 次下载（共 \2 次）失败："),
    (re.compile(r"gave up after (\d+) attempts: "), r"已尝试 \1 次，不再自动重试："),
    (re.compile(r"^uncertain: "), "发送结果不明："),
    (re.compile(r"^sent to (.+?); refused: "), r"已送达 \1；被拒收："),
    (re.compile(r"^(\d+) new$"), r"新邮件 \1 封"),
]
# a delivery pass's summary (the status row 'smtp'): "3 sent, 0 refused, 0 to retry, 0 uncertain"
_COUNTS = {"sent": "已发送", "refused": "被拒收", "to retry": "待重试", "uncertain": "结果不明"}
_SUMMARY = re.compile(r"(\d+) (sent|refused|to retry|uncertain)")


def staff_reason(text: str | None) -> str | None:
    """A recorded failure for staff: the kind in Chinese, never a class name."""
    if text is None:
        return None
    parts = text.split(", ")
    if all(_SUMMARY.fullmatch(part) for part in parts):
        return "，".join(_SUMMARY.sub(lambda found: f"{_COUNTS[found.group(2)]} {found.group(1)} 封", part)
                        for part in parts)
    for pattern, words in _FRAMES:
        text = pattern.sub(words, text)
    text = _NAMED.sub(lambda found: f"（{kind_name(found.group(1))}）", text)
    return _KIND.sub(lambda found: f"{kind_name(found.group(1))}：", text)


# a line break of any kind; and the bidirectional controls that make a terminal show
# what follows them reversed or moved (a file name that reads as another)
_BREAKS = re.compile(r"[\t\n\r\v\f\x1c-\x1e\x85\u2028\u2029]+")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def one_line(text: str) -> str:
    """A sender's text (a subject, a course or file name) as one line of a table or a
    progress line: line breaks as a space; any other control character (ESC, which
    starts a sequence that recolours or clears the staff's terminal) and bidi controls
    as U+FFFD, as the ledger already shows an undecodable byte."""
    text = _BREAKS.sub(" ", text)
    return "".join("\ufffd" if ch in _BIDI or unicodedata.category(ch) == "Cc" else ch for ch in text)


def kind_name(name: str) -> str:
    if name in KIND_NAMES:
        return KIND_NAMES[name]
    return "程序内部错误" if name.endswith(("Error", "Exception")) else "处理失败"


def verdict_name(verdict: str | None) -> str:
    return VERDICT_NAMES.get(verdict or "", verdict or "—")


def state_name(state: str | None) -> str:
    return STATE_NAMES.get(state or "", state or "—")


def beijing_minute(moment: datetime | str | None) -> str:
    """A time for staff tables: Beijing time to the minute, 2026-11-30 21:10 (naive is UTC)."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
