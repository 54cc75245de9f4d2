"""intake.validators.audio: MP3 judged by content (ffmpeg makes both kinds)."""

from intake.samples import make_audio
from intake.validators.audio import check_audio


def test_mp3_passes(tmp_path):
    assert check_audio(make_audio(tmp_path / "a.mp3"), "a.mp3", "成果") == []


def test_wav_named_mp3_is_not_mp3(tmp_path):
    findings = check_audio(make_audio(tmp_path / "a.mp3", container="wav"), "a.mp3", "成果")
    assert [f.code for f in findings] == ["audio.not_mp3"] and "WAV" in findings[0].message


def test_mp3_named_wav_passes(tmp_path):
    assert check_audio(make_audio(tmp_path / "a.wav", container="mp3"), "a.wav", "成果") == []


def test_garbage_is_not_mp3(tmp_path):
    path = tmp_path / "a.mp3"
    path.write_bytes(b"ID3 but not really" * 10)
    assert [f.code for f in check_audio(path, "a.mp3", "成果")] == ["audio.not_mp3"]
