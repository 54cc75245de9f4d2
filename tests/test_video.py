"""intake.validators.video on real videos made by ffmpeg."""

from __future__ import annotations

import subprocess

import pytest

from intake.kernel.policy import load_policy
from intake.parsers.media import MAX_TRACKS, iso_track_count
from intake.samples import make_video
from intake.validators.video import check_video
from tests.bounded import judged_in_project

RULES = load_policy().video


def video_codes(path):
    return [f.code for f in check_video(path, path.name, "p", RULES)]


def test_300_seconds_passes_301_fails(tmp_path):
    exact = make_video(tmp_path / "300.mp4", seconds=300)
    assert video_codes(exact) == []
    longer = make_video(tmp_path / "301.mp4", seconds=301, audio=True)
    findings = check_video(longer, "301.mp4", "p", RULES)
    assert [f.code for f in findings] == ["video.too_long"]
    assert "时长为 5 分 01" in findings[0].message and "5 分 00 秒" in findings[0].message


def test_1280x720_is_resolution(tmp_path):
    findings = check_video(make_video(tmp_path / "a.mp4", 1280, 720), "a.mp4", "p", RULES)
    assert [f.code for f in findings] == ["video.resolution"]
    assert "1280×720" in findings[0].message


def test_portrait_1080x1920_is_resolution(tmp_path):
    assert video_codes(make_video(tmp_path / "p.mp4", 1080, 1920)) == ["video.resolution"]


def test_landscape_stream_rotated_90_is_portrait(tmp_path):
    rotated = make_video(tmp_path / "r.mp4", 1920, 1080, rotate=90)
    findings = check_video(rotated, "r.mp4", "p", RULES)
    assert [f.code for f in findings] == ["video.resolution"]
    assert "1080×1920" in findings[0].message


def test_rotated_180_stays_landscape(tmp_path):
    assert video_codes(make_video(tmp_path / "r.mp4", 1920, 1080, rotate=180)) == []


def test_quicktime_mov_is_not_mp4(tmp_path):
    mov = make_video(tmp_path / "a.mov", 1920, 1080)
    assert video_codes(mov) == ["video.not_mp4"]
    # renaming does not make it MP4: judged by content
    renamed = mov.rename(tmp_path / "a.mp4")
    assert video_codes(renamed) == ["video.not_mp4"]


def test_extension_case_does_not_matter(tmp_path):
    assert video_codes(make_video(tmp_path / "A.MP4", 1920, 1080)) == []


def test_garbage_is_unreadable(tmp_path):
    junk = tmp_path / "v.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    assert video_codes(junk) == ["video.unreadable"]


@pytest.mark.parametrize("seconds,expected", [(299, []), (302, ["video.too_long"])])
def test_duration_boundary_neighbours(tmp_path, seconds, expected):
    assert video_codes(make_video(tmp_path / "v.mp4", seconds=seconds)) == expected


def _many_tracks(tmp_path, suffix: str, tracks: int):
    """One 1920×1080 video stream mapped ``tracks`` times into one file by ffmpeg."""
    source = make_video(tmp_path / "one.mp4", 1920, 1080, seconds=1)
    maps = [arg for _ in range(tracks) for arg in ("-map", "0:v")]
    target = tmp_path / f"tracks{suffix}"
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(source), *maps, "-c", "copy", str(target)],
                   check=True, capture_output=True, timeout=120)
    source.unlink()
    return target


def test_an_mp4_with_hundreds_of_tracks_is_unreadable_at_once(tmp_path):
    # 10,000 tracks in 6 MB kept MediaInfo busy for two minutes and 1.7 GiB; the
    # track count is read from the box headers before MediaInfo runs
    path = _many_tracks(tmp_path, ".mp4", 300)
    assert iso_track_count(path) == MAX_TRACKS + 1  # counted no further than needed
    findings = judged_in_project(tmp_path, "video", path, ["video.unreadable"])
    assert f"超过 {MAX_TRACKS} 条" in findings[0]["message"]


def test_mediainfo_runs_in_a_child_within_limits(tmp_path):
    # Matroska: no box headers to count; MediaInfo itself runs out of its child's memory
    path = _many_tracks(tmp_path, ".mkv", 1000)
    findings = judged_in_project(tmp_path, "video", path, ["video.unreadable"])
    assert "内存" in findings[0]["message"]


def test_an_ordinary_mp4_counts_its_tracks(tmp_path):
    assert iso_track_count(make_video(tmp_path / "v.mp4", audio=True)) == 2
    assert iso_track_count(make_video(tmp_path / "v.mov")) == 1
    junk = tmp_path / "j.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    assert iso_track_count(junk) is None
