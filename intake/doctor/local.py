"""Checks of this machine: the settings, the external tools, free disk against the
reserve, and the clock."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

from pymediainfo import MediaInfo

from intake.doctor.model import Check, Context, ServerTime, failed, passed
from intake.fetchers import make_http
from intake.kernel.errors import IntakeError
from intake.kernel.policy import load_policy
from intake.kernel.report import beijing_text
from intake.settings import Settings, load_settings

SETTINGS, SETTINGS_TITLE = "settings", "设置"
DISK, DISK_TITLE = "disk", "磁盘剩余空间"
CLOCK, CLOCK_TITLE = "clock", "时钟与时区"
GB = 1024 ** 3
CLOCK_TOLERANCE = 300.0  # seconds: a clock further off than this misplaces the digest and the scheduler
CLOCK_URL = "https://pan.baidu.com/"  # any HTTP answer carries the server's Date (through INTAKE_HOST_MAP)
INSTALL = "请安装后再试（Debian 12：运行 deploy/bootstrap.sh，或 apt-get install {package}）"
# (check name, program, what intake does with it, the Debian package)
TOOLS = (
    ("unar", ("unar", "lsar"), "RAR 压缩包（含 RAR5、分卷、加密）的列目录与解压", "unar"),
    ("7zz", ("7zz",), "zip 与 7z 压缩包的列目录与解压", "7zip"),
    ("file", ("file",), "判断压缩包类型（patool）", "file"),
    ("antiword", ("antiword",), "读取旧版 Word（.doc）文档", "antiword"),
)


def check_settings(config_file: str | None) -> tuple[Check, Settings | None]:
    """The settings as the daemon reads them, and the policy they name."""
    try:
        settings = load_settings(config_file)
        load_policy(settings.policy, settings.policy_overrides)
    except IntakeError as err:
        return failed(SETTINGS, SETTINGS_TITLE, f"设置有误，请按提示修正：{err}"), None
    notes = [f"数据目录 {settings.data_dir}"]
    unusable = _unwritable(settings.data_dir)
    if unusable:
        return failed(SETTINGS, SETTINGS_TITLE, f"数据目录 {unusable} 不可写：请修正 INTAKE_DATA_DIR，"
                      "或让运行本程序的用户可以写入该目录"), settings
    notes.append(f"评审规则 {settings.policy}")
    if not settings.staff_emails:
        notes.append("未设置 INTAKE_STAFF_EMAILS，不发送每日汇总和告警")
    return passed(SETTINGS, SETTINGS_TITLE, "可以读取：" + "；".join(notes)), settings


def _unwritable(folder: Path) -> Path | None:
    """The folder (or, while it does not exist yet, its nearest existing parent) if this
    user cannot create files there; None when it can."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return None if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK) else existing


def check_tools() -> list[Check]:
    checks = []
    for name, programs, use, package in TOOLS:
        title = f"外部工具 {name}"
        missing = [program for program in programs if shutil.which(program) is None]
        if missing:
            checks.append(failed(f"tool.{name}", title, f"找不到程序 {'、'.join(missing)}（用途：{use}）：" +
                                 INSTALL.format(package=package)))
        else:
            checks.append(passed(f"tool.{name}", title, f"{shutil.which(programs[0])}（用途：{use}）"))
    checks.append(_mediainfo())
    return checks


def _mediainfo() -> Check:
    name, title = "tool.mediainfo", "外部工具 MediaInfo"
    try:
        usable = MediaInfo.can_parse()
    except Exception:  # a library that fails to load is this check's answer, not a crash
        usable = False
    if usable:
        return passed(name, title, "MediaInfo 库可用（用于核对视频时长、分辨率和音频格式）")
    return failed(name, title, "MediaInfo 库不可用（用于核对视频与音频）：请安装 libmediainfo（Debian 12："
                  "apt-get install libmediainfo0v5），或在虚拟环境中重新安装 pymediainfo")


def check_disk(context: Context) -> Check:
    settings = context.settings
    assert settings is not None
    folder = settings.data_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free / GB
    reserve = settings.disk_reserve_gb
    if free < reserve:
        return failed(DISK, DISK_TITLE, f"数据目录 {settings.data_dir} 所在磁盘仅剩 {free:.1f} GB，低于保留空间 "
                      f"INTAKE_DISK_RESERVE_GB={reserve:g} GB，下载和解压将不会开始：请清理磁盘，或把 INTAKE_DATA_DIR "
                      "移到更大的磁盘（或调低 INTAKE_DISK_RESERVE_GB）")
    detail = f"剩余 {free:.1f} GB，保留空间 INTAKE_DISK_RESERVE_GB={reserve:g} GB"
    if free < reserve + settings.download_max_gb:
        detail += (f"；注意：不足以容纳一封邮件的下载上限 INTAKE_DOWNLOAD_MAX_GB={settings.download_max_gb:g} GB，"
                   "较大的网盘文件会因空间不足暂缓下载")
    return passed(DISK, DISK_TITLE, detail)


def http_date(settings: Settings) -> ServerTime | None:
    """pan.baidu.com's clock from the Date of one HTTP answer (to about a second and half
    the round trip), through INTAKE_HOST_MAP; None when no answer came."""
    http = make_http(settings)
    try:
        before = time.time()
        response = http.request("HEAD", CLOCK_URL, follow=False)
        after = time.time()
    except IntakeError:
        return None
    finally:
        http.close()
    try:
        server = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError):
        return None
    local = datetime.fromtimestamp((before + after) / 2, timezone.utc)
    return ServerTime("pan.baidu.com 的 HTTP Date", server, local, 1.0 + (after - before) / 2)


def check_clock(context: Context) -> Check:
    """The deadline is judged by the server's INTERNALDATE, whatever our clock says; the
    digest and the scheduler use our clock, in Beijing time (explicitly, whatever TZ)."""
    offset = datetime.now().astimezone().utcoffset()
    hours = (offset.total_seconds() / 3600) if offset is not None else 0.0
    zone = (f"本机时区为 UTC{hours:+g}，每日汇总与定时任务按北京时间（Asia/Shanghai）计算，与本机时区无关；"
            f"本机时间（北京时间）{beijing_text(datetime.now(timezone.utc))}")
    compared = []
    for seen in context.server_times:
        ahead = (seen.local - seen.server).total_seconds()  # > 0: our clock is ahead of the server's
        if seen.lower_bound:
            if -ahead > CLOCK_TOLERANCE:
                return failed(CLOCK, CLOCK_TITLE, f"本机时钟比{seen.source}慢约 {-ahead / 60:.0f} 分钟：请校准系统时间"
                              "（启用 NTP，例如 systemd-timesyncd 或 chrony）；否则每日汇总和定时任务会错时。" + zone)
            compared.append(f"不早于{seen.source}（此项只能发现本机时钟偏慢）")
        elif abs(ahead) > CLOCK_TOLERANCE + seen.error:
            way = "快" if ahead > 0 else "慢"
            return failed(CLOCK, CLOCK_TITLE, f"本机时钟比 {seen.source} {way}约 {abs(ahead) / 60:.0f} 分钟：请校准系统时间"
                          "（启用 NTP，例如 systemd-timesyncd 或 chrony）；否则每日汇总和定时任务会错时。" + zone)
        else:
            compared.append(f"与 {seen.source} 相差 {abs(ahead):.0f} 秒")
    checked = ("本机时钟" + "，".join(compared) + f"（允许误差 {CLOCK_TOLERANCE / 60:.0f} 分钟）") if compared else (
        "未能取得服务器时间，未核对本机时钟是否准确（请确认已启用 NTP）")
    return passed(CLOCK, CLOCK_TITLE, f"{checked}；{zone}；截止时间以邮件服务器的接收时间（INTERNALDATE）为准")
