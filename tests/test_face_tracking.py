"""Faces followed across frames: the tracker alone on known boxes, and the whole pipeline on a
synthetic video of two real faces that move and cross."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from affect import Analyzer
from affect import InvalidInputError
from affect.face import DetectedFace, FaceAnalysis, FaceBox, FaceEncoder, FaceRequest, FaceTracker, summarize_tracks
from affect.face._track import MAX_TRACKS
from affect.labels import EMOTION_NAMES, sentiment_from_emotions
from affect.results import AffectEstimate, Modality, ModalityResult

SIDE = 128
FRAMES = 24
STEP = 20  # pixels per frame


def _reading(top: int) -> ModalityResult:
    probs = [0.9 if k == top else 0.1 / 6 for k in range(len(EMOTION_NAMES))]
    return ModalityResult(**AffectEstimate.fields_from_probs(probs, sentiment_from_emotions(probs)),
                          modality=Modality.FACE, model="test@0")


def _analysis(boxes: list[tuple[int, int]], tops: list[int] | None = None) -> FaceAnalysis:
    tops = tops or [0] * len(boxes)
    faces = tuple(DetectedFace(FaceBox(x, y, 60, 60), 0.9, _reading(t)) for (x, y), t in zip(boxes, tops))
    return FaceAnalysis(faces=faces, width=640, height=480)


def test_tracker_keeps_ids_through_a_crossing_and_a_missed_frame():
    tracker = FaceTracker()
    ids_a, ids_b = [], []
    for t in range(20):
        a, b = (40 + 25 * t, 100), (540 - 25 * t, 130)  # they cross at t = 10, overlapping
        boxes = [a, b] if t != 10 else [b]  # a is hidden behind b in one frame
        out = tracker.update(_analysis(boxes)).faces
        if t != 10:
            ids_a.append(out[0].track_id)
        ids_b.append(out[-1].track_id)
    assert set(ids_a) == {1} and set(ids_b) == {2}


def test_tracks_end_after_missed_frames_and_ids_are_not_reused():
    tracker = FaceTracker(max_missed=2)
    assert tracker.update(_analysis([(100, 100)])).faces[0].track_id == 1
    for _ in range(3):
        tracker.update(_analysis([]))
    assert tracker.live_tracks == 0
    assert tracker.update(_analysis([(100, 100)])).faces[0].track_id == 2  # a new track, not 1 again
    crowd = [(70 * (k % 9), 70 * (k // 9)) for k in range(45)]
    tracker.update(_analysis(crowd))
    assert tracker.live_tracks <= MAX_TRACKS  # the state is bounded however many faces a frame has


def test_smoothing_is_a_moving_average_of_the_track():
    tracker = FaceTracker(smoothing=0.5)
    first = tracker.update(_analysis([(100, 100)], [0])).faces[0]
    second = tracker.update(_analysis([(104, 100)], [1])).faces[0]
    assert first.smoothed.emotions == pytest.approx(first.result.emotions)
    expected = {n: 0.5 * first.result.emotions[n] + 0.5 * second.result.emotions[n] for n in EMOTION_NAMES}
    assert second.smoothed.emotions == pytest.approx(expected)
    assert second.result.emotion.value == EMOTION_NAMES[1]  # the frame's own reading is kept as is


@pytest.fixture(scope="module")
def encoder() -> FaceEncoder:
    return FaceEncoder()


@pytest.fixture(scope="module")
def two_faces(encoder: FaceEncoder, data_root: Path) -> list[np.ndarray]:
    """Two slice faces (of different classes) that the detector finds alone on a plain picture."""
    out = []
    for folder in ("happy", "surprise", "neutral", "angry"):
        for path in sorted((data_root / "face/fer2013-test-slice" / folder).glob("*.jpg"))[:5]:
            big = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
            canvas = np.full((360, 640), 120, np.uint8)
            canvas[100 : 100 + SIDE, 200 : 200 + SIDE] = big
            if len(encoder.analyze(canvas).faces) == 1:
                out.append(big)
                break
        if len(out) == 2:
            return out
    raise AssertionError("no two detectable faces in the slice")


def _centres(t: int) -> list[tuple[int, int]]:
    """Face A moves right along the top, face B left and a little lower: they cross half-way."""
    return [(80 + STEP * t, 150), (80 + STEP * (FRAMES - 1 - t), 150 + SIDE // 2)]


def test_two_faces_that_move_and_cross_keep_their_track_ids(encoder: FaceEncoder, two_faces, tmp_path: Path):
    path = tmp_path / "two.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 360))
    assert writer.isOpened()
    for t in range(FRAMES):
        frame = np.full((360, 640), 120, np.uint8)
        for face, (cx, cy) in zip(two_faces, _centres(t)):  # B is drawn last: in front at the crossing
            frame[cy - SIDE // 2 : cy + SIDE // 2, cx - SIDE // 2 : cx + SIDE // 2] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()

    frames = encoder.analyze_video(path, fps=10.0)
    assert len(frames) == FRAMES
    ids: list[set[int]] = [set(), set()]
    seen = [0, 0]
    for t, frame in enumerate(frames):
        for face in frame.analysis.faces:
            cx, cy = face.box.x + face.box.w / 2, face.box.y + face.box.h / 2
            which = int(np.argmin([np.hypot(cx - x, cy - y) for x, y in _centres(t)]))
            assert np.hypot(cx - _centres(t)[which][0], cy - _centres(t)[which][1]) < SIDE / 3
            assert face.track_id is not None and face.smoothed is not None
            ids[which].add(face.track_id)
            seen[which] += 1
    assert seen[0] >= FRAMES * 0.75 and seen[1] >= FRAMES * 0.75, seen
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1], ids  # one id each, never swapped

    tracks = summarize_tracks(frames)
    assert sorted(t.track_id for t in tracks) == sorted(ids[0] | ids[1])
    assert sum(t.frames for t in tracks) == sum(seen)
    assert all(sum(t.result.emotions.values()) == pytest.approx(1.0) for t in tracks)


def test_a_conversations_successive_images_keep_track_ids(two_faces):
    analyzer = Analyzer(text=None, speech=None)
    with analyzer.conversation() as conversation:
        turns = []
        for t in (0, 1, 2):
            frame = np.full((360, 640), 120, np.uint8)
            for face, (cx, cy) in zip(two_faces, [(160 + 10 * t, 150), (480 - 10 * t, 150)]):
                frame[cy - SIDE // 2 : cy + SIDE // 2, cx - SIDE // 2 : cx + SIDE // 2] = face
            turns.append(conversation.analyze(image=frame))
    by_turn = [sorted((f.x, f.track_id) for f in turn.faces) for turn in turns]
    assert all(len(faces) == 2 for faces in by_turn)
    ids = [[tid for _, tid in faces] for faces in by_turn]
    assert sorted(ids[0]) == [1, 2] and ids[1] == ids[0] and ids[2] == ids[0]  # the same id for the same face, every turn
    assert turns[0].to_dict()["faces"][0]["track_id"] in (1, 2)


def test_each_speakers_images_are_tracked_apart(two_faces):
    """A caller and an agent, each centred in their own camera's frame, taking turns: one tracker
    for the conversation gave both faces the same track id (their boxes overlap). Each speaker
    keeps their own id, turn after turn, and no id is shared."""
    analyzer = Analyzer(text=None, speech=None)
    with analyzer.conversation() as conversation:
        ids: dict[str, list[int]] = {"caller": [], "agent": []}
        for t in range(3):
            for speaker, face in zip(("caller", "agent"), two_faces):
                frame = np.full((360, 640), 120, np.uint8)
                frame[180 - SIDE // 2 : 180 + SIDE // 2, 320 - SIDE // 2 + 4 * t : 320 + SIDE // 2 + 4 * t] = face
                (found,) = conversation.analyze(image=frame, speaker=speaker).faces
                ids[speaker].append(found.track_id)
    assert len(set(ids["caller"])) == 1 and len(set(ids["agent"])) == 1, ids
    assert ids["caller"][0] != ids["agent"][0], ids


def test_a_reset_speakers_faces_are_tracked_anew(two_faces):
    """A new caller put through under the same name (``reset_speaker``) is someone else in front of
    the camera: their face gets a new track id (never one used before), the agent's keeps its own."""
    analyzer = Analyzer(text=None, speech=None)
    with analyzer.conversation() as conversation:
        ids: dict[str, list[int]] = {"caller": [], "agent": []}
        for t in range(4):
            if t == 2:
                conversation.reset_speaker("caller")
            for speaker, face in zip(("caller", "agent"), two_faces):
                frame = np.full((360, 640), 120, np.uint8)
                frame[180 - SIDE // 2 : 180 + SIDE // 2, 320 - SIDE // 2 + 4 * t : 320 + SIDE // 2 + 4 * t] = face
                (found,) = conversation.analyze(image=frame, speaker=speaker).faces
                ids[speaker].append(found.track_id)
    assert ids["caller"][0] == ids["caller"][1] != ids["caller"][2] == ids["caller"][3], ids
    assert ids["caller"][2] not in ids["agent"] + ids["caller"][:2]
    assert len(set(ids["agent"])) == 1, ids


def _frame(faces_at: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
    frame = np.full((360, 640), 120, np.uint8)
    for face, cx, cy in faces_at:
        frame[cy - SIDE // 2 : cy + SIDE // 2, cx - SIDE // 2 : cx + SIDE // 2] = face
    return frame


def test_between_full_searches_the_detector_looks_around_the_tracked_face(two_faces):
    """A moving face through a conversation: with the default focused search the detector reads a
    fraction of the windows of a full search on every image, and finds the same face, at the
    same place, under one track id."""
    frames = [_frame([(two_faces[0], 160 + 12 * t, 150 + 4 * t)]) for t in range(12)]
    read = {}
    for every in (1, 10):
        analyzer = Analyzer(text=None, speech=None, forecast=None, encoder_options={"face": {"full_search_every": every}})
        model = analyzer.face.detector.model
        before = model.windows_read
        with analyzer.conversation() as conversation:
            read[every] = [conversation.analyze(image=frame).faces for frame in frames]
        read[every, "windows"] = model.windows_read - before
    assert read[10, "windows"] < read[1, "windows"] / 3, read
    for t, (full, focused) in enumerate(zip(read[1], read[10])):
        assert len(full) == 1 and len(focused) == 1, t
        a, b = full[0], focused[0]
        assert abs((a.x + a.width / 2) - (b.x + b.width / 2)) < SIDE / 8 and abs(a.width - b.width) < SIDE / 5, (t, a, b)
    assert {faces[0].track_id for faces in read[10]} == {1}


def test_a_face_that_jumps_away_is_found_in_the_same_frame_and_a_new_face_by_the_next_full_search(encoder: FaceEncoder, two_faces):
    """The shortcut never loses an expected face (a face that is not where the tracker expects it
    makes the detector search the whole pyramid in that same frame), and a face that appears
    elsewhere is found no later than the next full search."""
    every = 4
    tracker = encoder.new_tracker()
    a, b = two_faces
    frames = [_frame([(a, 120, 150)]), _frame([(a, 520, 200)]),  # frame 1: A jumps to the other side
              *[_frame([(a, 520, 200), (b, 140, 220)]) for _ in range(4)]]  # frame 2 on: B appears
    hints, found = [], []
    for frame in frames:
        near = tracker.search_hints(frame.shape[1], frame.shape[0], every)
        hints.append(near)
        found.append(tracker.update(encoder.analyze_many([FaceRequest(frame, near)])[0]).faces)
    assert hints[0] == () and len(hints[1]) == 1 and hints[every] == ()  # full searches: the first frame, then every 4th
    assert len(found[1]) == 1 and found[1][0].box.x > 400  # A, found where it went
    assert found[1][0].track_id != found[0][0].track_id  # too far to be the same track: a new one
    assert all(len(faces) == 2 for faces in found[every:]), [len(f) for f in found]  # B from the full search on


def test_search_hints_ask_for_a_full_search_when_the_frame_size_changes():
    tracker = FaceTracker()
    tracker.update(_analysis([(100, 100)]))
    assert tracker.search_hints(640, 480, 10) == ((100.0, 100.0, 160.0, 160.0),)
    assert tracker.search_hints(320, 240, 10) == ()  # another frame size: the boxes mean nothing there
    assert tracker.search_hints(640, 480, 1) == ()  # 1: a full search on every frame
    with pytest.raises(InvalidInputError, match="full_search_every"):
        FaceEncoder(full_search_every=0)
    with pytest.raises(InvalidInputError, match="near"):
        FaceRequest(np.zeros((8, 8), np.uint8), near=((10.0, 10.0, 5.0, 20.0),))
    with pytest.raises(InvalidInputError, match="near"):
        FaceRequest(np.zeros((8, 8), np.uint8), near=((0.0, 0.0, float("nan"), 20.0),))


def test_face_requests_and_turns_cross_process_boundaries():
    """Ray sends a turn's requests to the encoder's replica and keeps FaceTurns in the ingress: both pickle."""
    import pickle

    request = FaceRequest(np.full((32, 48), 7, np.uint8), near=((1.0, 2.0, 11.0, 12.0),))
    back = pickle.loads(pickle.dumps(request))
    assert back.near == request.near and np.array_equal(back.image, request.image)
    from affect.face.encoder import FaceTurns

    assert pickle.loads(pickle.dumps(FaceTurns("face-x@1", 4))).full_search_every == 4


def test_expected_faces_never_cost_more_windows_than_a_full_search(encoder: FaceEncoder):
    """However many boxes a request says to look around, the detector reads at most the pyramid."""
    model = encoder.detector.model
    frame = np.full((320, 320), 120, np.uint8)
    full = encoder.detector.windows(320, 320)
    before = model.windows_read
    encoder.analyze_many([FaceRequest(frame, near=tuple((10.0 * k, 10.0, 10.0 * k + 40, 50.0) for k in range(30)))])
    assert model.windows_read - before == full


def _still_video(path: Path, face: np.ndarray | None, frames: int, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 360))
    for _ in range(frames):
        frame = np.full((360, 640), 120, np.uint8)
        if face is not None:
            frame[120 : 120 + SIDE, 256 : 256 + SIDE] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_a_video_read_in_part_says_so_and_a_playlist_is_not_opened(encoder: FaceEncoder, two_faces, tmp_path: Path):
    """``max_frames`` reached before the end returned the first part as if it were the whole; a
    text file naming other videos (FFmpeg's ffconcat playlist) was read, videos beside it and all."""
    from affect.face import VideoIncompleteWarning

    video = _still_video(tmp_path / "call.avi", two_faces[0], 30)  # 3 s
    with pytest.warns(VideoIncompleteWarning, match="read to 1.0 s only") as caught:
        assert len(encoder.analyze_video(video, fps=1.0, max_frames=2)) == 2
    cut = caught[0].message
    assert (cut.reason, cut.frames_read, cut.max_frames, cut.read_to_s) == ("max_frames", 2, 2, pytest.approx(1.0))
    assert cut.frames_to_end == 3  # samples at 0, 1 and 2 s of the 3 s the file announces
    import pickle
    import warnings

    assert str(pickle.loads(pickle.dumps(cut))) == str(cut)
    broken = tmp_path / "broken.avi"  # its second half lost
    broken.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.warns(VideoIncompleteWarning, match="decoding stopped at frame") as caught:
        read = encoder.analyze_video(broken, fps=1.0)
    stopped = caught[0].message
    assert (stopped.reason, stopped.frames_read, stopped.frames_announced) == ("decoding_stopped", len(read), 30)
    assert 10 <= stopped.frames_decoded < 20 and stopped.read_to_s == pytest.approx((stopped.frames_decoded - 1) / 10)

    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoIncompleteWarning)
        assert len(encoder.analyze_video(video, fps=1.0, max_frames=3)) == 3  # the whole video: no warning

    playlist = tmp_path / "upload.mp4"
    playlist.write_text(f"ffconcat version 1.0\nfile {video.name}\nfile {video.name}\n")
    with pytest.raises(InvalidInputError, match="not in a container") as refused:
        encoder.analyze_video(playlist)
    assert refused.value.field == "video"
    with pytest.raises(InvalidInputError, match="max_frames"):
        encoder.analyze_video(video, max_frames=float("nan"))  # type: ignore[arg-type]


def test_the_command_line_says_no_reading_for_a_video_without_a_face(tmp_path: Path):
    import subprocess
    import sys

    video = _still_video(tmp_path / "empty-room.avi", None, 20)
    out = subprocess.run([sys.executable, "-m", "affect_server.cli", "analyze", "--video", str(video), "--quiet"],
                         capture_output=True, timeout=300)
    assert out.returncode == 3 and b"no face detected" in out.stderr, out.stderr.decode()
