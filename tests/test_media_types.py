"""The media types say what the checks accept, at run time too: a value of each kind the library's
``AudioInput`` and ``ImageInput`` (``affect.media``) and the client's name passes the check that
reads it, and a value of no kind is refused by it. tests/test_typing.py checks that a type checker
holds callers to them."""

from __future__ import annotations

import subprocess
import sys
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import ForwardRef, get_args, get_type_hints

import cv2
import numpy as np
import pytest
import torch

import affect_client
from affect import AudioInput, ImageInput, InvalidInputError, Turn, VideoInput
from affect.face._input import load_gray
from affect.speech.encoder import check_audio_source
from affect_client._inputs import Array, to_audio, to_image


def test_the_media_types_import_no_torch() -> None:
    """``affect.media`` (``Turn``'s field types) names torch's tensor without importing torch."""
    probe = "import sys\nimport affect.media\nprint('torch' in sys.modules, 'affect.media' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120)
    assert out.stdout.decode().split() == ["False", "True"], out.stderr.decode()


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "gray.png"
    path.write_bytes(cv2.imencode(".png", np.full((40, 48), 128, np.uint8))[1].tobytes())
    return path


def test_every_kind_of_library_audio_passes_its_check_and_no_other() -> None:
    kinds = {np.ndarray: np.zeros(1600, np.float32), torch.Tensor: torch.zeros(1600), str: "turn.flac",
             Path: Path("turn.flac"), bytes: b"RIFF", bytearray: bytearray(b"RIFF"), memoryview: memoryview(b"RIFF")}
    # A tensor is named by a forward reference: importing affect.media imports no torch.
    assert set(get_args(AudioInput)) == set(kinds) - {torch.Tensor} | {ForwardRef("Tensor", module="torch")}
    assert type(None) in get_args(AudioInput | None)  # still a union at run time, for callers' annotations
    hints = get_type_hints(Turn)  # tools that read hints at run time (pydantic, typeguard) resolve the tensor
    assert torch.Tensor in get_args(hints["audio"])
    for value in kinds.values():  # the kind is accepted (a rate with samples only); what a file holds is read later
        check_audio_source(value, 16000 if isinstance(value, (np.ndarray, torch.Tensor)) else None)
    for value in (123, PurePosixPath("turn.flac"), [0.0, 0.1]):
        with pytest.raises(InvalidInputError, match="audio must be"):
            check_audio_source(value, 16000)


def test_every_kind_of_library_image_passes_its_check_and_no_other(png: Path) -> None:
    kinds = {str: str(png), PathLike[str]: png, bytes: png.read_bytes(), bytearray: bytearray(png.read_bytes()),
             memoryview: memoryview(png.read_bytes()), np.ndarray: np.zeros((40, 48), np.uint8)}
    assert set(get_args(ImageInput)) == set(kinds)
    for value in kinds.values():
        assert load_gray(value).shape == (40, 48)
    for value in (3.5, [[0, 1], [1, 0]]):
        with pytest.raises(InvalidInputError, match="must be encoded bytes, a file path or a uint8 numpy array"):
            load_gray(value)
    assert set(get_args(VideoInput)) == {str, PathLike[str]}


def test_every_kind_of_client_audio_passes_its_check_and_no_other(png: Path) -> None:
    kinds = {str: str(png), PathLike[str]: png, bytes: b"RIFF", bytearray: bytearray(b"RIFF"),
             memoryview: memoryview(b"RIFF"), Array: np.zeros(1600, np.int16),
             affect_client.Audio: affect_client.Audio.pcm16(bytes(3200), 16000)}
    assert set(get_args(affect_client.AudioInput)) == set(kinds)
    for value in kinds.values():  # a file is sent as its bytes, unread (a rate with samples only)
        assert isinstance(to_audio(value, 16000 if isinstance(value, np.ndarray) else None), affect_client.Audio)
    for value in (123, torch.zeros(1600), [0.0, 0.1], affect_client.Image.encoded(b"png")):
        with pytest.raises(affect_client.InvalidInputError, match="audio must be"):
            to_audio(value, 16000)


def test_every_kind_of_client_image_passes_its_check_and_no_other(png: Path) -> None:
    kinds = {str: str(png), PathLike[str]: png, bytes: png.read_bytes(), bytearray: bytearray(png.read_bytes()),
             memoryview: memoryview(png.read_bytes()), Array: np.zeros((40, 48), np.uint8),
             affect_client.Image: affect_client.Image.from_file(png)}
    assert set(get_args(affect_client.ImageInput)) == set(kinds)
    for value in kinds.values():
        assert isinstance(to_image(value), affect_client.Image)
    for value in (3.5, [[0, 1], [1, 0]], affect_client.Audio.pcm16(bytes(2), 16000)):
        with pytest.raises(affect_client.InvalidInputError, match="must be a file path"):
            to_image(value)


@pytest.mark.parametrize("pixels, channel_order", [
    (np.random.default_rng(0).random((40, 48, 3)), "bgr"),  # float in [0, 1]: was cast to zeros, "no face detected"
    (np.zeros((40, 48, 3), np.uint8), None),  # was a plain ValueError naming color_order
    (np.zeros((40, 48, 4), np.uint8), None),
    (np.zeros((40, 48, 3), np.uint8), "bgra"),
    (np.zeros((40, 48, 2), np.uint8), "rgb"),
    (np.zeros((2, 40, 48, 3), np.uint8), "rgb"),
])
def test_image_from_array_refuses_what_send_refuses_with_the_same_message(pixels: np.ndarray,
                                                                         channel_order: str | None) -> None:
    """``Image.from_array`` checked less than ``send(image=array)``: it cast floats to uint8 and let
    an RGBA array through with its alpha (the server then counted its bytes as 3 channels'). Both
    read an array by one rule (``affect_client._inputs._array_image``): the same refusal, the
    same field (the array's own name, ``pixels``, or ``channel_order``) and message, naming
    ``channel_order``, never the older ``color_order``."""
    with pytest.raises(affect_client.InvalidInputError) as built:
        affect_client.Image.from_array(pixels, channel_order=channel_order)
    with affect_client.AffectClient("127.0.0.1:9", max_retries=0) as client:  # nothing listens: refused first
        with pytest.raises(affect_client.TurnInputError) as sent:
            client.analyze(image=pixels, channel_order=channel_order)
    assert str(built.value).removeprefix("pixels") == str(sent.value).removeprefix("image")
    assert {built.value.field, sent.value.field} in ({"pixels", "image"}, {"channel_order"})
    assert "color_order" not in str(built.value)


def test_image_from_array_sends_what_send_sends() -> None:
    """An RGBA array's colour alone (alpha dropped, 3 bytes a pixel, as the wire's RAW_RGB8 says),
    and the same message ``send(image=array)`` builds, for each kind of array; ``color_order``,
    the older name, still works."""
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (40, 48, 4), dtype=np.uint8)
    image = affect_client.Image.from_array(rgba, channel_order="rgb")
    assert (image.width, image.height, len(image.data)) == (48, 40, 40 * 48 * 3)
    assert image.data == np.ascontiguousarray(rgba[:, :, :3]).tobytes()
    for pixels, order in ((rgba, "rgb"), (rgba[:, :, :3], "bgr"), (rgba[:, :, :1], None), (rgba[:, :, 0], None)):
        assert affect_client.Image.from_array(pixels, channel_order=order) == to_image(pixels, order)
    assert affect_client.Image.from_array(rgba, color_order="rgb") == image


def test_a_channel_order_is_read_in_either_case_by_library_and_client() -> None:
    """OpenCV's documentation writes "BGR": ``Image.from_array`` took it (it lowered the name) where
    ``send()`` and the library refused it. One rule now (``affect_proto.rules.channel_order_of``):
    either case, the same pixels; anything else refused naming ``channel_order`` alike."""
    from affect.face._input import array_to_gray

    pixels = np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    assert affect_client.Image.from_array(pixels, channel_order="BGR") == affect_client.Image.from_array(
        pixels, channel_order="bgr")
    assert np.array_equal(array_to_gray(pixels, "RGB", "image"), array_to_gray(pixels, "rgb", "image"))
    with pytest.raises(InvalidInputError, match='channel_order "bgr" \\(OpenCV\\) or "rgb"') as library:
        array_to_gray(pixels, "bgra", "image")
    assert library.value.field == "channel_order"
