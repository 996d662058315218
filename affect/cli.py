"""The ``affect`` command line.

    affect analyze --text "I can't believe you did that!" [--json]
    echo "..." | affect analyze --text -
    affect analyze --conversation turns.json [--json] [--event-speakers customer]
    affect analyze --text "..." --audio turn.wav --image frame.jpg
    affect analyze --video call.mp4 --fps 2
    affect analyze photos/ --out results.csv          # a folder or glob of images, audio or conversation files
    affect plot turns.jsonl [--out turns.png]         # valence, arousal and emotion over a conversation
    affect demo
    affect serve [--port 50051] [--metrics-port 9100] ... [--ray [--ray-address auto] [--ray-config FILE]]
    affect analyze --text "..." --text-model MINILM_MELD_V1   # a model by the name `affect models` prints
    affect models
    affect export DIR [--format onnx]                 # the encoders as ONNX, with their processing and parity

Exit codes: 0 done, 2 bad input (a one-line message; files and folders: every file failed),
3 no reading (nothing in the input could be read: silence, no face; the reasons are printed),
4 some of the files and folders' files could not be read (the others' rows are written), 130
interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from affect._errors import AffectError, InvalidInputError
from affect.option_rules import (DEFAULT_FPS, DEFAULT_MAX_FRAMES, context_weight_problem, face_detector_problem,
                                 fps_problem, max_frames_problem, parity_items_problem,
                                 parity_items_value)
from affect.results_files import is_error_row
from affect.runtime_names import RUNTIMES
from affect.turns_file import (MAX_CONVERSATION_BYTES, command_line_file_size,
                               read_conversation)  # noqa: F401 (read_conversation: public here)
from affect_proto.rules import event_speakers_problem, read_checked_file

if TYPE_CHECKING:
    from affect._progress import Status
    from affect.analyzer import Analyzer
    from affect.results import ModelLoadEvent, TurnResult

T = TypeVar("T")

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NO_READING = 3
EXIT_SOME_FAILED = 4
EXIT_INTERRUPTED = 130
# Said after the refusal of a --conversation file that is no conversation file at all (a clip or
# an image given in its place), as `affect plot` says what it takes.
CONVERSATION_TAKES = ("`affect analyze --conversation` takes a JSON Lines conversation file, one turn per line (a string, "
                      "or an object with text, speaker, audio, image), or a JSON list of turns")
EXIT_CODES = f"""exit codes: {EXIT_OK} done, {EXIT_BAD_INPUT} bad input, {EXIT_NO_READING} no reading (nothing in the input could be
read: silence, no face; the reasons are printed), {EXIT_SOME_FAILED} files and folders: some files could not be read
(the others' rows are written; every file failing is {EXIT_BAD_INPUT}), {EXIT_INTERRUPTED} interrupted"""


def sample_conversation() -> list[dict]:
    with resources.files("affect.assets").joinpath("sample_conversation.json").open("rb") as fh:
        return json.loads(fh.read().decode("utf-8"))


def load_analyzer(needs: set[str], *, quiet: bool = False, status: Status | None = None,
                  encoder_options: dict | None = None, runtime: str = "auto", forecast: bool = True,
                  models: Mapping[str, str | bool | None] | None = None) -> Analyzer:
    """``Analyzer(...)`` with only the encoders in ``needs`` ("face", "speech", "text"), loaded as
    the library loads them, with a progress line on the terminal for each model (or on
    ``status``, a running one). ``models``: each needed encoder's choice (``affect.registry.model_choice``;
    the default weights where none is given). ``encoder_options``, ``runtime`` and ``forecast`` go to
    ``Analyzer`` as they are."""
    from affect._progress import Status, wants_progress

    if status is None:
        with Status("loading", wants_progress(quiet)) as status:
            return load_analyzer(needs, status=status, encoder_options=encoder_options, runtime=runtime,
                                 forecast=forecast, models=models)
    status.update("loading torch")  # imported with the library's models, before the first is loaded
    from affect.analyzer import ENCODER_CLASSES, Analyzer

    chosen = models or {}
    encoders: dict[str, Any] = {m.value: m.value in needs and chosen.get(m.value, True) for m in ENCODER_CLASSES}
    return Analyzer(**encoders, encoder_options=encoder_options,
                    runtime=runtime, forecast=forecast, on_progress=lambda event: status.update(loading_line(event)))


def loading_line(event: ModelLoadEvent) -> str:
    """The progress line of an ``affect.ModelLoadEvent``: ``loading the text model``, then
    ``loaded text-minilm@3 on onnx in 1.2 s``."""
    if event.stage == "start":
        return f"loading the {event.model} model"
    return f"loaded {event.model_id} on {event.runtime} in {event.seconds:.1f} s"


def _add_runtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="what runs the networks: auto (the default: ONNX Runtime where it is faster and installed, "
                             "else PyTorch, as the library and the server choose), torch, onnx or onnx-int8 "
                             "(pip install 'affect[onnx]')")


def _add_model_flags(parser: argparse.ArgumentParser, *, none: bool) -> None:
    """``--text-model``, ``--speech-model``, ``--face-model``: named as ``affect serve`` names them,
    each checked by the one rule (``affect.registry.model_choice``) when the command line is read;
    ``none`` (leave the modality out) where the command takes it."""
    for modality in ("face", "speech", "text"):
        parser.add_argument(f"--{modality}-model", type=_model_choice(modality, none=none), default=None,
                            metavar="NAME", dest=f"{modality}_model",
                            help=f"the {modality} weights: a name or id that `affect models` lists (default: "
                                 f"its default{'; none leaves ' + modality + ' unread' if none else ''})")


def _model_choice(modality: str, *, none: bool) -> Callable[[str], str | bool]:
    """An argparse ``type`` for ``--<modality>-model`` (importing the weights families: torch):
    ``False`` for none, as ``Analyzer`` takes it (``None`` is the flag not given)."""

    def check(text: str) -> str | bool:
        from affect._errors import UnknownModelError
        from affect.registry import model_choice

        try:
            choice = model_choice(modality, text)
        except UnknownModelError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip('"')) from None
        if choice is None and not none:
            raise argparse.ArgumentTypeError(f"none: leave {modality} out of --encoders instead")
        return False if choice is None else choice

    return check


def _models(args: argparse.Namespace) -> dict[str, str | bool | None]:
    """The models chosen by ``--text-model`` etc. (``load_analyzer(models=...)``)."""
    return {m: choice for m in ("face", "speech", "text") if (choice := getattr(args, f"{m}_model", None)) is not None}


def _encoder_options(args: argparse.Namespace) -> dict[str, dict]:
    """``analyze``'s flags as ``Analyzer(encoder_options=...)``."""
    options: dict[str, dict] = {}
    if args.speech_adapt:
        options["speech"] = {"adapt": True}
    if args.text_context_weight is not None:
        options.setdefault("text", {})["context_weight"] = args.text_context_weight
    if args.text_prior is not None:
        options.setdefault("text", {})["prior"] = args.text_prior
    if args.face_detector is not None:
        options["face"] = {"detector": args.face_detector}
    return options


def _checked(parse: Callable[[str], T], problem: Callable[[object], str | None]) -> Callable[[str], T]:
    """An argparse ``type``: the flag's text parsed, then checked by the library's rule for the
    option (``affect.option_rules``), so that a bad value is refused when the command line is
    parsed (exit 2, naming the flag), before any model loads."""

    def check(text: str) -> T:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(problem(text) or f"cannot read {text!r}") from None
        if (why := problem(value)) is not None:
            raise argparse.ArgumentTypeError(why)
        return value

    return check


def _folder(text: str) -> Path:
    """An argparse ``type``: a folder that exists."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder" if Path(text).exists() else f"no such folder: {text}")
    return Path(text)


def _speaker_problem(name: object) -> str | None:
    """``--speaker`` by the library's rule for a speaker's name (``affect.limits.check_id``)."""
    from affect_proto.rules import id_problem

    return id_problem(str(name), "the name")


def _speaker_names(text: str) -> tuple[str, ...]:
    """``--event-speakers``'s names: comma-separated, spaces around them ignored."""
    return tuple(name.strip() for name in text.split(","))


def _text_prior(text: str) -> object:
    """``--text-prior`` checked as the library checks it (``affect.text.prior.parse_prior``)."""
    from affect.text.prior import parse_prior

    try:
        return parse_prior(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _analyze_turns(items: list[dict], args: argparse.Namespace) -> int:
    """Analyse the turns of one conversation (and its speaker resets: ``affect.turns_file``),
    loading only the encoders the turns need."""
    from affect._format import no_reading_line, turn_table
    from affect.batch import turn_modalities
    from affect.results import TurnResults
    from affect.turns_file import is_reset, play

    from affect._progress import Status, wants_progress

    turns = [item for item in items if not is_reset(item)]
    needs = turn_modalities(turns)
    with Status("loading", wants_progress(args.quiet)) as status:
        conversation = load_analyzer(needs, status=status, encoder_options=_encoder_options(args),
                                     runtime=args.runtime, models=_models(args)).conversation(event_speakers=args.event_speakers or ())
        results = TurnResults()
        status.update(f"analysing turn 1 of {len(turns)}")
        for result in play(conversation, items):
            results.append(result)
            if len(results) < len(turns):
                status.update(f"analysing turn {len(results) + 1} of {len(turns)}")
    if args.out:
        _write_results(args.out, [r.to_dict() for r in results])
        print(_written_line(args.out, len(results)), file=sys.stderr)
    if args.plot:
        _plot(results, args.plot, [t.get("text") for t in turns])
    any_reading = any(r.has_reading for r in results)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    elif len(results) == 1 and not any_reading:
        print(no_reading_line(results[0]))
    else:
        print(turn_table(results, [t.get("text") for t in turns] if "text" in needs else None))
        for r in results:
            if not r.has_reading:
                print(f"turn {r.turn_index}: {no_reading_line(r)}")
                continue
            for modality, why in r.absent.items():
                print(f"turn {r.turn_index}: {modality.value}: {why}")
            if len(r.present) > 1:
                print(f"turn {r.turn_index}: " + ", ".join(
                    f"{m.value} {res.emotion.value} {res.confidence:.2f} (share {r.shares[m]:.2f})"
                    for m, res in r.modalities.items()))
            for face in r.faces:
                print(f"turn {r.turn_index}: face at x={face.x} y={face.y} {face.width}x{face.height} "
                      f"(detection {face.detection_score:.2f}): {face.result.emotion.value} {face.result.confidence:.2f}")
    if not any_reading:
        if args.json:
            print(f"affect: {no_reading_line(results[0]) if len(results) == 1 else 'no reading in any turn'}",
                  file=sys.stderr)
        return EXIT_NO_READING
    return EXIT_OK


def _analyze_files(args: argparse.Namespace) -> int:
    """``affect analyze DIR_OR_GLOB ...``: one record per image or audio file, one per turn of
    each conversation file, to a table, JSON Lines or ``--out``."""
    from affect._progress import wants_progress
    from affect.batch import analyze_inputs, find_inputs, kinds_needed

    if args.out:
        _output_format(args.out)
    found = find_inputs(args.inputs)
    inputs = found.files
    if found.skipped or found.results:  # before the models load: a folder of MP3s is seen at once
        print(f"affect: {found.skipped_line()}", file=sys.stderr)
    kinds = kinds_needed(inputs)
    _refuse_unread_settings(args, kinds)
    analyzer = load_analyzer(kinds or {"text"}, quiet=args.quiet, encoder_options=_encoder_options(args),
                             runtime=args.runtime, models=_models(args))
    errors: list[str] = []
    counts = {"rows": 0, "readings": 0}

    def counted(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        # records are written as they come: a large folder is never held in memory
        for record in records:
            counts["rows"] += 1
            counts["readings"] += record.get("emotion") is not None
            if "error" in record:
                errors.append(f"affect: {record['file']}: {record['error']}")
            yield record

    records = counted(analyze_inputs(analyzer, inputs, progress=wants_progress(args.quiet),
                                     event_speakers=args.event_speakers or ()))
    if args.out:
        _write_results(args.out, records, extra_columns=("file", "error"))
    elif args.json:
        from affect.export import write_jsonl

        write_jsonl(records, sys.stdout)
    else:
        print(_files_table(list(records)))
    for line in errors:
        print(line, file=sys.stderr)
    if args.out:  # no table: it would be as long as the folder, its rows held to align it
        print(_written_line(args.out, counts["rows"], files=len(inputs)), file=sys.stderr)
    if len(errors) == counts["rows"]:
        return EXIT_BAD_INPUT
    if not counts["readings"]:
        print("affect: no reading in any file", file=sys.stderr)
    if errors:
        print(f"affect: {len(errors)} of {len(inputs)} files could not be read (above; their rows say why)",
              file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK if counts["readings"] else EXIT_NO_READING


def _written_line(path: Path, rows: int, *, files: int | None = None) -> str:
    """What ``--out`` wrote, on standard error: ``affect: 3 rows written to turns.csv`` (a conversation,
    whose table is printed too), ``affect: 2 files, 5 rows written to results.csv`` (files and folders)."""
    counted = ([(files, "file")] if files is not None else []) + [(rows, "row")]
    said = ", ".join(f"{n:,} {noun}{'' if n == 1 else 's'}" for n, noun in counted)
    return f"affect: {said} written to {path}"


def _files_table(records: list[dict]) -> str:
    from affect._format import table
    from affect.export import turn_row

    rows = []
    for record in records:
        row = turn_row(record) if "error" not in record else {}
        if "error" in record:
            reading = ["error", "", "", "", "", record["error"]]
        elif row["emotion"] is None:
            reading = ["no reading", "", "", "", "", row["no_reading"]]
        else:
            reading = [row["emotion"], f"{row['confidence']:.2f}", row["sentiment"], f"{row['valence']:+.2f}",
                       f"{row['arousal']:+.2f}", row["present"]]
        turn = "" if "error" in record else str(row["turn_index"])
        rows.append([record["file"], turn, *reading])
    return table(["file", "turn", "emotion", "p", "sentiment", "valence", "arousal", "modalities"], rows)


def _output_format(path: Path) -> str:
    from affect.export import output_format

    kind = output_format(path)
    if not kind:
        raise InvalidInputError(f"--out {path}: name a .csv or .jsonl file", field="out")
    if path.is_dir():
        raise InvalidInputError(f"--out {path} is a directory; name a .csv or .jsonl file", field="out")
    _writable_folder(path, "out")
    return kind


def _png_target(path: Path, flag: str) -> Path:
    """``path`` when it names a .png file in a folder that exists (checked before any model loads)."""
    if path.suffix.lower() != ".png":
        raise InvalidInputError(f"--{flag} {path}: name a .png file", field=flag)
    _writable_folder(path, flag)
    return path


def _writable_folder(path: Path, flag: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInputError(f"--{flag} {path}: the folder {folder} does not exist", field=flag)


def _write_results(path: Path, records: Iterable[dict], *, extra_columns: Sequence[str] = ()) -> None:
    from affect.export import turn_row, write_csv, write_jsonl

    kind = _output_format(path)
    written = [0]  # rows the writer has finished: it asks for the next only once one is written

    def counted(rows: Iterable[dict]) -> Iterator[dict]:
        for row in rows:
            yield row
            written[0] += 1

    try:
        with path.open("w", encoding="utf-8", newline="") as out:
            if kind == "csv":
                rows = (turn_row(r, **{k: r.get(k) for k in extra_columns}) for r in records)
                write_csv(counted(rows), out, extra_columns=extra_columns)
            else:
                write_jsonl(counted(records), out)
    except KeyboardInterrupt:  # the file is closed: its rows so far are whole, and it must not pass for complete
        print(_interrupted_line(path, written[0]), file=sys.stderr)
        raise


def _interrupted_line(path: Path, rows: int) -> str:
    """Said on standard error when Ctrl-C stops ``--out``: ``affect: interrupted; 50 complete rows
    written to results.csv (partial)``."""
    return f"affect: interrupted; {rows:,} complete {'row' if rows == 1 else 'rows'} written to {path} (partial)"


def _plot(results: Iterable[TurnResult | dict[str, Any]], path: Path, texts: Sequence[str | None] | None = None) -> None:
    from affect.plot import plot_conversation

    _png_target(path, "plot")
    records = [r if isinstance(r, dict) else r.to_dict() for r in results]
    plot_conversation(records, path, texts=texts)
    print(f"affect: plot written to {path}", file=sys.stderr)


def _analyze_video(path: Path, args: argparse.Namespace) -> int:
    """The video's table (or JSON); ``EXIT_NO_READING`` when no sampled frame had a face. A video
    read in part (``--max-frames``, or a file that stops decoding) says so on standard error."""
    import warnings

    from affect._format import table
    from affect._progress import Status, wants_progress

    as_json = args.json
    fps = DEFAULT_FPS if args.fps is None else args.fps
    max_frames = DEFAULT_MAX_FRAMES if args.max_frames is None else args.max_frames
    with Status("loading", wants_progress(args.quiet)) as status:
        encoder = load_analyzer({"face"}, status=status, encoder_options=_encoder_options(args), runtime=args.runtime,
                                forecast=False, models=_models(args)).face
        assert encoder is not None  # the one encoder asked for
        from affect.face import VideoIncompleteWarning

        status.update(f"reading the faces of {path.name} at {fps:g} frames per second")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", VideoIncompleteWarning)
            frames = encoder.analyze_video(path, fps=fps, max_frames=max_frames)
    for warning in caught:
        message, hint = warning.message, ""
        if isinstance(message, VideoIncompleteWarning) and message.reason == "max_frames":
            hint = f" (--max-frames {message.max_frames} reached: " + (
                f"--max-frames {message.frames_to_end} reads the whole video at --fps {fps:g})"
                if message.frames_to_end and message.frames_to_end > message.max_frames else "raise it to read more)")
        print(f"affect: {message}{hint}", file=sys.stderr)
    found = any(frame.analysis.faces for frame in frames)
    if as_json:
        print(json.dumps([f.to_dict() for f in frames], indent=2))
        return EXIT_OK if found else EXIT_NO_READING
    rows = []
    for frame in frames:
        primary = frame.analysis.primary
        rows.append([f"{frame.time_s:.1f}", str(len(frame.analysis.faces)),
                     primary.result.emotion.value if primary else frame.analysis.reason or "",
                     f"{primary.result.confidence:.2f}" if primary else "",
                     f"{primary.result.valence:+.2f}" if primary else ""])
    print(table(["time s", "faces", "emotion (largest face)", "p", "valence"], rows))
    if not found:
        print("no reading: face: no face detected in any sampled frame", file=sys.stderr)
    return EXIT_OK if found else EXIT_NO_READING


# ``affect analyze``'s flags that carry input or settings for one way of giving it input, with
# the ``args`` attribute that is set (not None, not False) when the flag is given.
_INPUT_FLAGS = {"--text": "text", "--audio": "audio", "--image": "image", "--video": "video",
                "--conversation": "conversation", "--speaker": "speaker"}
_VIDEO_FLAGS = {"--fps": "fps", "--max-frames": "max_frames"}
_CONVERSATION_FLAGS = {"--out": "out", "--plot": "plot", "--event-speakers": "event_speakers"}
# What each way leaves unused, and why: given with it, these flags are refused by name (exit 2)
# rather than ignored.
_UNUSED_FLAGS: dict[str, tuple[dict[str, str], str]] = {
    "inputs": ({**_INPUT_FLAGS, "--plot": "plot", **_VIDEO_FLAGS},
               "with files and folders: each image or clip is a turn of its own, each conversation file a conversation"),
    "video": ({k: v for k, v in {**_INPUT_FLAGS, **_CONVERSATION_FLAGS}.items() if k != "--video"},
              "with --video: the faces of its sampled frames are analysed on their own"),
    "conversation": ({k: v for k, v in {**_INPUT_FLAGS, **_VIDEO_FLAGS}.items() if k != "--conversation"},
                     "with --conversation: its turns carry their own text, speaker, audio and images"),
    "turn": (_VIDEO_FLAGS, "without --video: --fps and --max-frames say how a video is sampled"),
}
# The settings of how one modality is read (by the modality, as ``affect.batch.turn_modalities``
# names them, and what in the input carries it): refused too when the input has none of it.
_MODALITY_FLAGS: dict[str, tuple[dict[str, str], str]] = {
    "text": ({"--text-model": "text_model", "--text-context-weight": "text_context_weight", "--text-prior": "text_prior"},
             "text"),
    "speech": ({"--speech-model": "speech_model", "--speech-adapt": "speech_adapt"}, "audio"),
    "face": ({"--face-model": "face_model", "--face-detector": "face_detector"}, "images"),
}
_HINTS = {"--plot": " (--plot draws one conversation: give it with --conversation, or run `affect plot FILE` on a "
                    "conversation's results)"}


def _refuse_unused_flags(args: argparse.Namespace, way: str) -> None:
    """A usage error naming the flags given that ``way`` of giving input would leave unused."""
    flags, why = _UNUSED_FLAGS[way]
    if given := _given(args, flags):
        hints = "".join(_HINTS.get(flag, "") for flag in given)
        raise InvalidInputError(f"{', '.join(given)} cannot be given {why}{hints}", field=flags[given[0]])


def _refuse_unread_settings(args: argparse.Namespace, modalities: Collection[str]) -> None:
    """A usage error naming the settings given of the modalities the input does not carry
    (``modalities``: "text", "speech", "face", once what the input carries is known), or the
    ``--<modality>-model none`` that leave out every modality it carries. With none
    (every conversation file of a folder refused: an input with nothing to read is refused for
    that), nothing is refused here."""
    unread: list[str] = []  # "--text-prior cannot be given without text in the input", a modality each
    fields: list[str] = []
    for modality, (settings, what) in _MODALITY_FLAGS.items():
        if modalities and modality not in modalities and (set_ := _given(args, settings)):
            unread.append(f"{', '.join(set_)} cannot be given without {what} in the input")
            fields.append(settings[set_[0]])
    if unread:
        raise InvalidInputError("; ".join(unread), field=fields[0])
    left_out = [m for m in modalities if getattr(args, f"{m}_model", None) is False]  # False: --<m>-model none
    if modalities and len(left_out) == len(modalities):  # every modality of the input left out: nothing to read
        flags = ", ".join(f"--{m}-model none" for m in left_out)
        raise InvalidInputError(f"{flags} leaves nothing to read: the input carries only "
                                f"{' and '.join(_MODALITY_FLAGS[m][1] for m in left_out)}", field=f"{left_out[0]}_model")


def _given(args: argparse.Namespace, flags: dict[str, str]) -> list[str]:
    """The flags of ``flags`` given on the command line, in the table's order."""
    return [flag for flag, name in flags.items() if getattr(args, name, None) not in (None, False, [])]


def cmd_analyze(args: argparse.Namespace) -> int:
    way = ("inputs" if args.inputs else "video" if args.video else "conversation" if args.conversation else "turn")
    _refuse_unused_flags(args, way)
    if way == "video":  # a conversation's settings are checked once it is read, files' once they are
        _refuse_unread_settings(args, {"face"})
    elif way == "turn":
        _refuse_unread_settings(args, {m for m, given in (("text", args.text is not None), ("speech", args.audio),
                                                          ("face", args.image)) if given})
    if args.inputs:
        return _analyze_files(args)
    if args.video:
        return _analyze_video(_existing(args.video, "video"), args)
    if args.out:
        _output_format(args.out)
    if args.plot:
        _png_target(args.plot, "plot")
    if args.conversation:
        from affect.batch import turn_modalities

        turns = read_conversation(args.conversation, takes=CONVERSATION_TAKES)
        _refuse_unread_settings(args, turn_modalities(turns))
    else:
        text = None
        if args.text == "-":
            raw = sys.stdin.buffer.read(MAX_CONVERSATION_BYTES + 1)
            text = raw.decode("utf-8") if _is_utf8(raw) else None
            if text is None:
                raise InvalidInputError("--text is not valid UTF-8", field="text")
            text = _without_final_newline(text)
        elif args.text is not None:  # undecodable argv bytes arrive as lone surrogates
            if any(0xDC80 <= ord(c) <= 0xDCFF for c in args.text):
                raise InvalidInputError("--text is not valid UTF-8", field="text")
            text = args.text
        if text is None and not args.audio and not args.image:
            raise InvalidInputError("give --text, --audio, --image, --video, --conversation, or files and folders",
                                    field="input")
        turns = [{"text": text, "speaker": args.speaker,
                  "audio": str(_existing(args.audio, "audio")) if args.audio else None,
                  "image": str(_existing(args.image, "image")) if args.image else None}]
    try:
        _check_texts(turns)
        return _analyze_turns(turns, args)
    except InvalidInputError as exc:
        if args.conversation:  # a conversation file's turns: their fields are its keys, not flags
            raise
        raise _by_flag(exc, _other_flag_hint(exc, args)) from None


# The library's names of the fields of the one turn ``affect analyze`` makes of its flags, and the
# flag that gives each: a refusal of that turn names the flag the user typed (``--audio: x.ulaw is
# not a readable WAV/FLAC/OGG file``), not the library's field (``audio``). The command line
# has no flag of its own for a list of images or a sample rate: its one image is ``--image``, and
# a rate is that of the ``--audio`` file.
_TURN_FLAGS = {"text": "--text", "speaker": "--speaker", "audio": "--audio",
               "sample_rate": "--audio", "image": "--image", "images": "--image"}


def _by_flag(exc: InvalidInputError, hint: str = "") -> InvalidInputError:
    """``exc`` naming the flag that gave its field (``_TURN_FLAGS``), ``hint`` after it; as it is
    for any other field."""
    flag = _TURN_FLAGS.get(exc.field or "")
    if flag is None:
        return exc
    return type(exc)(exc.message_naming(flag) + hint, field=flag.lstrip("-"))


# The flag that takes a file of each kind (``affect._file_kinds``), for a file given to another.
_FLAG_OF_KIND = {"video": "--video", "audio": "--audio", "image": "--image"}


def _other_flag_hint(exc: InvalidInputError, args: argparse.Namespace) -> str:
    """``; give a video with --video`` after the refusal of an ``--image`` that is a video (or of
    an ``--audio`` that is one), where the file's header says what it is; "" otherwise."""
    from affect._file_kinds import HEAD_BYTES, file_kind

    flag = _TURN_FLAGS.get(exc.field or "")
    path = args.image if flag == "--image" else args.audio if flag == "--audio" else None
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            found = file_kind(fh.read(HEAD_BYTES))
    except OSError:
        return ""
    other = _FLAG_OF_KIND.get(found.kind) if found else None
    if found is None or other is None or other == flag or found.kind == "image":
        return ""  # an image of another format has no other flag to go to
    return f"; give {'a video' if found.kind == 'video' else 'audio'} with {other}"


def _check_texts(turns: list[dict]) -> None:
    """Refuse bad text before loading any model, or importing torch (the text rules of
    ``affect.text._input``); the clean text (a ``CleanText``) goes on to the library, which does
    not clean it again. Text that is none to read (an empty transcript) beside audio or images is
    left as it is, for the library to leave unread (``affect.limits.unread_modalities``, the
    rule of ``Turn.unread``); alone, it is refused as the library refuses it."""
    if any(t.get("text") is not None for t in turns):
        from affect.batch import turn_modalities
        from affect.limits import is_no_text, unread_modalities
        from affect.results import Modality
        from affect.text._input import clean_text
        from affect_proto.rules import only_empty_text

        for i, turn in enumerate(turns):
            field = "text" if len(turns) == 1 else f"conversation[{i}].text"
            if turn.get("text") is None:
                continue
            sent = {Modality.TEXT, *(Modality(m) for m in turn_modalities([turn]))}
            if Modality.TEXT in unread_modalities(sent, turn["text"]):  # beside audio or images: left unread
                continue
            if is_no_text(turn["text"]):
                raise InvalidInputError(only_empty_text(field), field=field)
            turn["text"] = clean_text(turn["text"], field=field)


def _existing(path: Path, field: str) -> Path:
    """``path``, given as ``--field``, when it is a file (``turns_file.command_line_file_size``)."""
    command_line_file_size(path, f"--{field}")
    return path


def _without_final_newline(text: str) -> str:
    """Text piped in without the one line ending that ``echo`` and ``print`` add (``\\n`` or
    ``\\r\\n``), so that it is not counted against the length limit; other whitespace is the text's."""
    return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def cmd_plot(args: argparse.Namespace) -> int:
    """``affect plot FILE``: a conversation's results (JSON or JSON Lines that ``affect analyze``
    wrote) drawn as a PNG; a conversation file of turns is analysed first. The error rows of
    ``affect analyze DIR`` results (files that could not be read) are left out, with a line
    saying so."""
    from affect.turns_file import read_conversation as read_turns

    path: Path = args.file
    out: Path = args.out or path.with_suffix(".png")
    _png_target(out, "out")
    records = _result_records(path)
    if records is not None:
        failed = [r for r in records if is_error_row(r)]
        records = [r for r in records if not is_error_row(r)]
        if not records:
            raise InvalidInputError(f"{path} holds only error rows (files `affect analyze` could not read): no turn to "
                                    f"plot; the first: {failed[0]['file']}: {failed[0]['error']}", field="file")
        if failed:
            print(f"affect: {path}: {len(failed)} error {'row' if len(failed) == 1 else 'rows'} left out (files that "
                  f"could not be read: {', '.join(str(r['file']) for r in failed)})", file=sys.stderr)
    if records is None:  # turns, not results: analyse them
        turns = read_turns(path)
        _check_texts(turns)
        args.out, args.plot, args.json, args.speech_adapt, args.text_context_weight = None, out, False, False, None
        args.face_detector = args.text_prior = args.event_speakers = None
        return _analyze_turns(turns, args)
    files = {r.get("file") for r in records}
    if len(files) > 1:
        raise InvalidInputError(f"{path} holds the results of {len(files)} files; a plot shows one conversation",
                                field="file")
    if "turn_index" not in records[0]:
        raise InvalidInputError(f"{path}: the records are not turn results", field="file")
    _plot(records, out)
    return EXIT_OK if any(r.get("emotion") is not None for r in records) else EXIT_NO_READING


def _result_records(path: Path) -> list[dict] | None:
    """The turn results in a JSON / JSON Lines file, or ``None`` when it holds turns to analyse."""
    from affect.turns_file import read_conversation as read_turns

    if path.is_dir():
        raise InvalidInputError(f"{path} is a directory; name one file of turn results (or of turns)", field="file")
    if not path.is_file():
        read_turns(path)  # raises the one-line message for a missing file
    content, problem = read_checked_file(path, "FILE")  # one its reader may not read: is_file needs no permission
    if problem:
        raise InvalidInputError(problem, field="file")
    try:
        raw = content.decode("utf-8")
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            data = [json.loads(line) for line in raw.splitlines() if line.strip()]
        else:
            data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        try:
            read_turns(path)  # the same checks and messages as a conversation file, then what plot takes
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc}; `affect plot` takes a JSON Lines (or JSON) file of turns, or of the "
                                    f"results `affect analyze --out FILE.jsonl` writes", field="file") from None
        raise
    if isinstance(data, list) and data and all(isinstance(r, dict) and ("present" in r or is_error_row(r))
                                               for r in data):
        return data
    return None


def cmd_models(args: argparse.Namespace) -> None:
    from affect.registry import list_weights

    rows = list_weights()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    from affect._format import licence_lines, table

    # Narrow enough for a terminal of 100 columns: the name a model is chosen by (Analyzer(text=...),
    # affect serve --text-model; its id is taken too) and each modality's default, then every model's
    # licence, which its data limits (the model cards say how). --json has the files, data and figures.
    print(table(["model", "modality", "default", "name"],
                [[r["id"], r["modality"], "default" if r["default"] else "", r["member"]] for r in rows]))
    print()
    print("\n".join(licence_lines(rows)))


AddCommands = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]", argparse.ArgumentParser], None]


def _installed_version() -> str:
    """The installed package's version (a checkout not installed says so)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("affect")
    except PackageNotFoundError:
        return "(not installed)"


def build_parser(add_commands: AddCommands | None = None, *, prog: str = "affect") -> argparse.ArgumentParser:
    """The library's commands; ``add_commands(subparsers, common)`` adds more after ``plot``
    (``affect_server.cli`` adds ``demo`` and ``serve``; ``common`` is the ``--quiet`` parent)."""
    parser = argparse.ArgumentParser(prog=prog, description="Emotion, sentiment, valence and arousal per conversation turn.",
                                     epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"affect {_installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress line or bar (a terminal shows them while models load and files are read); "
                             "what was written (`N rows written to FILE`) and every problem are still said on "
                             "standard error")

    analyze = sub.add_parser(
        "analyze", parents=[common], epilog=EXIT_CODES,
        help="analyse one turn (any of text, audio, image), a video, a conversation, or a folder of files",
        description="Analyse one turn, a conversation file, a video, or files and folders (images, audio clips "
                    "and conversation files; each image or clip is one turn on its own).")
    analyze.add_argument("inputs", nargs="*", metavar="DIR_OR_GLOB",
                         help="folders (searched recursively), glob patterns or files to analyse, one row each "
                              "(one per turn for conversation files), with a progress bar")
    analyze.add_argument("--text", help="one turn of text ('-' reads it from standard input)")
    analyze.add_argument("--audio", type=Path, help="the turn's audio: a WAV, FLAC or OGG file")
    analyze.add_argument("--image", type=Path, help="the turn's image: a JPEG, PNG, WebP or BMP file")
    analyze.add_argument("--video", type=Path, help="a video file: the faces of frames sampled at --fps")
    analyze.add_argument("--fps", type=_checked(float, fps_problem), default=None,
                         help=f"frames per second sampled from --video (default {DEFAULT_FPS:g})")
    analyze.add_argument("--max-frames", type=_checked(int, max_frames_problem), default=None, metavar="N",
                         help=f"at most this many frames sampled from --video (default {DEFAULT_MAX_FRAMES}: ten minutes "
                              f"at 1 fps)")
    analyze.add_argument("--speaker", type=_checked(str, _speaker_problem), help="who said --text")
    analyze.add_argument("--conversation", type=Path,
                         help="a JSON list or JSON Lines file of turns: strings, or objects with text, speaker, audio, "
                              "image (file paths relative to the conversation file); between turns, "
                              '{"reset_speaker": NAME} starts that speaker anew')
    analyze.add_argument("--event-speakers", type=_checked(_speaker_names, event_speakers_problem), default=None,
                         metavar="NAME[,NAME]",
                         help="raise events only about these speakers, e.g. --event-speakers customer for no warnings "
                              "about the agents (default: everyone's); every turn is still read")
    analyze.add_argument("--json", action="store_true", help="print JSON instead of a table (JSON Lines for files)")
    analyze.add_argument("--out", type=Path,
                         help="write the results to a .csv or .jsonl file, then say how many rows on standard error; "
                              "a conversation's table is printed too, but not that of files and folders (their rows "
                              "are written as they come, a table would be as long as the folder)")
    analyze.add_argument("--plot", type=Path, help="draw the conversation's valence, arousal and emotions to a .png file")
    analyze.add_argument("--speech-adapt", action="store_true",
                         help="read voices against the statistics of all the speech heard in this run, clip after clip, "
                              "instead of the training corpora's (recordings of one deployment: its lines, rooms and "
                              "callers; see the speech model card for when not to)")
    analyze.add_argument("--text-context-weight", type=_checked(float, context_weight_problem), default=None, metavar="W",
                         help="how much of a text turn's answer comes from reading it with the turns before it, 0 to 1 "
                              "(default: the text model's own, 0.5 for the default; 1 suits chats like the text model's "
                              "training dialogue; see the text model card)")
    analyze.add_argument("--text-prior", type=_text_prior, default=None, metavar="PRIOR",
                         help="the emotion frequencies the turns are expected to have: trained (the default: as the text "
                              "model learnt them), conversational, uniform, or emotion=weight pairs such as "
                              "neutral=0.8,anger=0.08,sadness=0.05,happiness=0.05,fear=0.01,disgust=0.005,surprise=0.005 "
                              "(an emotion left out is never read; see the text model card)")
    analyze.add_argument("--face-detector", type=_checked(str, face_detector_problem), default=None, metavar="NAME",
                         help="blazeface (the default), blazeface+mtcnn (MTCNN looks again after each full search: more "
                              "small, dim and side-lit faces, about 1.6x the detector's CPU) or haar; see the face model card")
    _add_model_flags(analyze, none=True)
    _add_runtime(analyze)
    analyze.set_defaults(func=cmd_analyze)

    plot = sub.add_parser("plot", parents=[common], epilog=EXIT_CODES,
                          help="draw a conversation: valence, arousal and the top emotion over its turns, events marked")
    plot.add_argument("file", type=Path, help="results (.jsonl or .json from affect analyze) or a conversation file of turns")
    plot.add_argument("--out", type=Path,
                      help="the .png to write (default: beside FILE, its name with .png: turns.jsonl draws turns.png "
                           "in turns.jsonl's folder)")
    _add_runtime(plot)  # a file of turns is analysed first
    plot.set_defaults(func=cmd_plot)

    if add_commands is not None:
        add_commands(sub, common)

    models = sub.add_parser("models", help="list the shipped models: each modality's default, the name to choose one by, "
                                           "their licences (--json: files, data and test figures too)")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)

    export = sub.add_parser("export", parents=[common], help="write the encoders as ONNX, with their processing and parity",
                            description="Each encoder's network as ONNX in DIR, a JSON sidecar per model with the processing "
                                        "before and after the graph, and parity.json / README.md: each graph against "
                                        "PyTorch, on the research test items where they are (--data-root), else on inputs "
                                        "the library makes itself (built-in sentences, synthetic faces and speech; the "
                                        "output says which). Needs pip install 'affect[onnx]'.")
    export.add_argument("dir", type=Path, metavar="DIR")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="the only format: onnx (the default)")
    export.add_argument("--encoders", default="face,speech,text", help="any of face, speech, text (comma-separated)")
    _add_model_flags(export, none=False)
    for name in ("face", "speech", "text"):  # the names before --<modality>-model, as affect serve names it
        export.add_argument(f"--{name}-weights", type=_model_choice(name, none=False), dest=f"{name}_model",
                            help=argparse.SUPPRESS)
    parity = export.add_mutually_exclusive_group()
    parity.add_argument("--parity-items", type=_checked(parity_items_value, parity_items_problem), default=600,
                        metavar="N", help="items per parity check: a whole number, 1 or more, or all (default: 600)")
    parity.add_argument("--no-parity", action="store_true",
                        help="skip the parity check: the graphs are not compared with PyTorch (the output says so)")
    export.add_argument("--data-root", type=_folder, default=None,
                        help="the research test data to check parity on; it must hold each encoder's test items "
                             "(default: $AFFECT_DATA_ROOT or ../shared/data where they are there, else built-in inputs)")
    export.set_defaults(func=cmd_export)
    return parser


def cmd_export(args: argparse.Namespace) -> int:
    """``affect export DIR``: see ``affect.onnx``."""
    from affect._progress import Status, wants_progress

    if args.dir.exists() and not args.dir.is_dir():
        raise InvalidInputError(f"{args.dir} is a file; name a folder to write into", field="dir")
    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    unknown = sorted(set(encoders) - {"face", "speech", "text"})
    if unknown or not encoders:
        raise InvalidInputError(f"--encoders: unknown {', '.join(unknown) or '(none given)'}; known: face, speech, text",
                                field="encoders")
    if args.no_parity and args.data_root is not None:
        raise InvalidInputError("--data-root cannot be given with --no-parity (the data is read for the parity check only)",
                                field="data_root")
    from affect.onnx import export_onnx, parity_table
    from affect.onnx._session import require_onnxruntime

    require_onnxruntime()  # a one-line error (exit 2) when onnxruntime is missing
    with Status("exporting", wants_progress(args.quiet)) as status:
        parities = export_onnx(args.dir, encoders=encoders,
                               **{m: None if choice in (None, True) else choice for m, choice in _models(args).items()},
                               data_root=args.data_root, parity_items=args.parity_items, parity=not args.no_parity,
                               progress=status.update)
    print(parity_table(parities), end="")
    print(f"written to {args.dir} (README.md says what each file is)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, parser: argparse.ArgumentParser | None = None,
         prog: str = "affect") -> int:
    """Run a command; ``parser`` defaults to the library's commands (see ``affect_server.cli``),
    named ``prog`` in usage lines (``python -m affect``)."""
    args = (parser or build_parser(prog=prog)).parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
    except AffectError as exc:
        print(f"affect: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`affect models --json | head -1`): as other tools, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit must not fail
        return EXIT_OK
    return code or EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
