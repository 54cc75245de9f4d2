"""Innovation-result audio: an MP3, judged by content (MediaInfo), not by name."""

from __future__ import annotations

from pathlib import Path

from intake.kernel.findings import Finding
from intake.parsers.media import media_info


def audio_format(path: Path) -> str | None:
    """'MP3' for MPEG Audio Layer 3, else MediaInfo's format name, None if unreadable."""
    try:
        info = media_info(path)
    except Exception:  # MediaError, or what pymediainfo raises on its report
        return None
    general = info.general_tracks[0] if info.general_tracks else None
    audio = info.audio_tracks[0] if info.audio_tracks else None
    if audio is None:
        return general.format if general is not None and general.format else None
    container = general.format if general is not None else None
    if (audio.format == "MPEG Audio" and "3" in str(audio.format_profile or "")
            and container in (None, "MPEG Audio")):  # not an MP3 stream inside a WAV or MP4
        return "MP3"
    return audio.format or (general.format if general is not None else None)


def check_audio(path: Path, rel: str, project: str | None) -> list[Finding]:
    fmt = audio_format(path)
    if fmt == "MP3":
        return []
    shown = {"PCM": "WAV（PCM）", "Wave": "WAV"}.get(fmt or "", fmt or "无法识别的格式")
    return [Finding("audio.not_mp3", f"音频“{rel}”的实际格式是 {shown}，不是 MP3（仅修改扩展名无效）。"
                    "请用音频软件转换为 MP3 格式后重新提交。", project, rel)]
