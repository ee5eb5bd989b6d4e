"""Reading clips: sampled frames equal a full decode, numbered as MegaDetector numbers them,
only what is needed is decoded, and hostile clips fail with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ct_io.errors import CamtrapError
from ct_io.video import (
    EVERY_FRAME,
    Sampling,
    VideoError,
    frame_file,
    is_video_file,
    parse_frame_file,
    probe,
    read_frames,
)
from ct_io.video_fixtures import (
    frame_brightness,
    frame_of_brightness,
    write_clip,
    write_hostile_clips,
)

CLIPS = {  # name → (codec, gop): long-GOP H.264 with B-frames, short GOP, intra-only MJPEG
    "h264_gop10.mp4": ("h264", 10),
    "h264_gop30.mp4": ("h264", 30),
    "mjpeg.avi": ("mjpeg", 1),
    "mpeg4.avi": ("mpeg4", 12),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        name: write_clip(d / name, frames=40, codec=codec, gop=gop)
        for name, (codec, gop) in CLIPS.items()
    }


def decoded(path: Path, sampling: Sampling = EVERY_FRAME) -> dict[int, np.ndarray]:
    return {f.index: np.asarray(f.image) for f in read_frames(path, sampling)}


@pytest.mark.parametrize("name", list(CLIPS))
@pytest.mark.parametrize(
    "sampling",
    [Sampling(every_n=7), Sampling(per_second=3), Sampling(frames=[0, 9, 10, 11, 39, 120])],
    ids=["every7", "3fps", "listed"],
)
def test_sampled_frames_equal_a_full_decode(
    clips: dict[str, Path], name: str, sampling: Sampling
) -> None:
    full = decoded(clips[name])
    assert sorted(full) == list(range(40))
    got = decoded(clips[name], sampling)
    assert got, "no frame"
    for index, pixels in got.items():
        assert np.array_equal(pixels, full[index]), f"frame {index} differs from a full decode"
    if sampling.every_n:
        assert sorted(got) == list(range(0, 40, 7))
    elif sampling.frames:
        assert sorted(got) == [0, 9, 10, 11, 39]  # 120 is past the end
    else:  # the first frame at or after each third of a second, at 10 fps
        assert sorted(got) == [0, 4, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37]


def test_frame_numbers_and_times_follow_presentation_order(clips: dict[str, Path]) -> None:
    frames = list(read_frames(clips["h264_gop10.mp4"], Sampling(every_n=5)))
    assert [f.index for f in frames] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert [f.time for f in frames] == pytest.approx([i / 10 for i in range(0, 40, 5)])
    # the pixels say which frame it is (the clip paints frame i at level 16 + 4i)
    assert [frame_of_brightness(frame_brightness(f.image)) for f in frames] == [
        f.index for f in frames
    ]


def test_probe_reads_the_header(clips: dict[str, Path]) -> None:
    info = probe(clips["h264_gop30.mp4"])
    assert (info.frame_rate, info.frame_count, info.width, info.height, info.codec) == (
        10.0,
        40,
        64,
        48,
        "h264",
    )
    assert info.duration == pytest.approx(4.0)


def test_only_the_groups_holding_wanted_frames_are_decoded(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames 0..9 of a 10-frame-GOP clip: the later groups are never decoded, and in
    MJPEG (every frame a keyframe) only the wanted frames are."""
    from ct_io import video

    decoded_packets: list[int] = []
    real_emit = video._GopDecoder._emit

    def emit(frames, keep, index_of):  # type: ignore[no-untyped-def]
        frames = list(frames)
        decoded_packets.append(len(frames))
        yield from real_emit(frames, keep, index_of)

    monkeypatch.setattr(video._GopDecoder, "_emit", staticmethod(emit))
    got = [f.index for f in read_frames(clips["mjpeg.avi"], Sampling(every_n=10))]
    assert got == [0, 10, 20, 30]
    assert sum(decoded_packets) == 4  # 4 of 40 frames decoded
    decoded_packets.clear()
    got = [f.index for f in read_frames(clips["h264_gop10.mp4"], Sampling(frames=[2]))]
    assert got == [2]
    assert sum(decoded_packets) <= 3  # at most frames 0..2 of the first group


@pytest.mark.parametrize("name", ["h264_gop10.mp4", "mjpeg.avi"])
def test_reading_without_decoder_threads_gives_the_same_frames(
    clips: dict[str, Path], name: str
) -> None:
    a = {f.index: np.asarray(f.image) for f in read_frames(clips[name], Sampling(every_n=3))}
    b = {
        f.index: np.asarray(f.image)
        for f in read_frames(clips[name], Sampling(every_n=3), threads=False)
    }
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_hostile_clips_fail_with_a_reason(tmp_path: Path) -> None:
    expected = write_hostile_clips(tmp_path)
    for name, words in expected.items():
        with pytest.raises(VideoError) as info:
            list(read_frames(tmp_path / name, Sampling(every_n=2)))
        assert words in info.value.reason, (name, info.value.reason)
        assert str(tmp_path / name) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(VideoError, match="file not found"):
        list(read_frames(tmp_path / "missing.mp4"))
    with pytest.raises(VideoError, match="folder"):
        probe(tmp_path)
    with pytest.raises(VideoError, match="no video stream"):
        probe(tmp_path / "audio_only.mp4")


def test_sampling_is_checked() -> None:
    with pytest.raises(CamtrapError, match="choose one"):
        Sampling(every_n=2, per_second=1.0)
    with pytest.raises(CamtrapError, match=">= 1"):
        Sampling(every_n=0)
    with pytest.raises(CamtrapError, match="> 0"):
        Sampling(per_second=float("nan"))
    assert Sampling(every_n=10).describe() == "every 10th frame"
    assert Sampling().describe() == "every frame"


def test_frame_file_names_round_trip() -> None:
    assert frame_file("a/clip.MP4", 120) == "a/clip.MP4/frame000120.jpg"
    assert parse_frame_file("a/clip.MP4/frame000120.jpg") == ("a/clip.MP4", 120)
    assert parse_frame_file("a\\clip.avi\\frame000003.jpg") == ("a/clip.avi", 3)
    assert parse_frame_file("a/photo.jpg") is None
    assert parse_frame_file("a/notes.txt/frame000001.jpg") is None
    assert is_video_file("x/Y.MOV") and not is_video_file("x/y.jpg")
