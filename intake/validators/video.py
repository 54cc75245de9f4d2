"""The roadshow video: an MP4 container, at most N seconds, exactly W×H as displayed."""

from __future__ import annotations

from pathlib import Path

from pymediainfo import Track

from intake.kernel.findings import Finding
from intake.kernel.policy import VideoRules
from intake.parsers.media import media_info


def check_video(path: Path, rel: str, project: str | None, rules: VideoRules) -> list[Finding]:
    def finding(code: str, message: str) -> Finding:
        return Finding(code, message, project, rel)

    try:
        info = media_info(path)
    except Exception as err:  # MediaError (in Chinese), or what pymediainfo raises on its report
        return [finding("video.unreadable", _unreadable(rel, str(err)))]
    general = info.general_tracks[0] if info.general_tracks else None
    video = info.video_tracks[0] if info.video_tracks else None
    if general is None or video is None:
        return [finding("video.unreadable", _unreadable(rel, "没有视频画面"))]

    findings = []
    container = general.format or "未知"
    profile = general.format_profile or ""
    if container != "MPEG-4" or "QuickTime" in profile or (general.codec_id or "").strip() == "qt":
        shown = "QuickTime（MOV）" if "QuickTime" in profile else container
        findings.append(finding(
            "video.not_mp4",
            f"视频“{rel}”的实际格式是 {shown}，不是 MP4（仅修改扩展名无效）。"
            "请用视频软件导出或转换为 MP4 格式（H.264 编码）后重新提交。",
        ))

    duration_ms = _duration_ms(general, video)
    limit_ms = rules.max_seconds * 1000
    if duration_ms is None:
        findings.append(finding("video.unreadable", _unreadable(rel, "无法读取时长")))
    elif duration_ms > limit_ms:
        findings.append(finding(
            "video.too_long",
            f"视频“{rel}”时长为 {_clock(duration_ms)}，超过 {_clock(limit_ms)} 的上限。"
            f"请剪辑到 {_clock(limit_ms)} 以内后重新提交。",
        ))

    width, height = display_size(video)
    if (width, height) != (rules.width, rules.height):
        portrait = " （竖屏）" if height > width else ""
        findings.append(finding(
            "video.resolution",
            f"视频“{rel}”的画面尺寸为 {width}×{height}{portrait}，要求为横屏 "
            f"{rules.width}×{rules.height}。请以 {rules.width}×{rules.height}（1080P 横屏）重新导出后提交。",
        ))
    return findings


def _duration_ms(general, video) -> float | None:
    for value in (general.duration, video.duration):
        try:
            if value is not None:
                return float(value)
        except (TypeError, ValueError):
            continue
    return None


def display_size(video: Track) -> tuple[int, int]:
    """Width and height as a player shows them: rotation and pixel aspect applied."""
    width = int(float(video.width or 0))
    height = int(float(video.height or 0))
    try:
        par = float(video.pixel_aspect_ratio or 1)
    except (TypeError, ValueError):
        par = 1.0
    if par > 0 and abs(par - 1) > 0.001:
        width = round(width * par)
    try:
        rotation = round(float(video.rotation or 0)) % 360
    except (TypeError, ValueError):
        rotation = 0
    if rotation in (90, 270):
        width, height = height, width
    return width, height


def _clock(ms: float) -> str:
    seconds = ms / 1000
    minutes, rest = divmod(seconds, 60)
    if abs(rest - round(rest)) < 0.0005:
        return f"{int(minutes)} 分 {int(round(rest)):02d} 秒"
    return f"{int(minutes)} 分 {rest:06.3f} 秒"


def _unreadable(rel: str, why: str) -> str:
    return (f"视频“{rel}”无法作为视频文件读取（{why}），文件可能已损坏或不是视频。"
            "请确认在本机能正常播放后重新提交 MP4 格式的视频。")
