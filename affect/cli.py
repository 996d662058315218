"""The ``affect`` command line.

    affect analyze --text "I can't believe you did that!" [--json]
    echo "..." | affect analyze --text -
    affect analyze --conversation turns.json [--json]
    affect analyze --text "..." --audio turn.wav --image frame.jpg
    affect analyze --video call.mp4 --fps 2
    affect demo
    affect serve [--port 50051] [--metrics-port 9100] ... [--ray [--ray-address auto] [--ray-config FILE]]
    affect models
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from affect._errors import AffectError, InputTooLargeError, InvalidInputError
from affect.text._input import clean_text

MAX_CONVERSATION_BYTES = 5_000_000


def read_conversation(path: Path) -> list[dict]:
    """Turns from a JSON file: a list of strings or of ``{"text": ..., "speaker": ...}`` objects."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}", field="conversation") from None
    if size > MAX_CONVERSATION_BYTES:
        raise InputTooLargeError(f"{path} is {size:,} bytes; the limit is {MAX_CONVERSATION_BYTES:,}", field="conversation")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid UTF-8 (byte {exc.start})", field="conversation") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}", field="conversation") from None
    if not isinstance(data, list) or not data:
        raise InvalidInputError(f"{path} must hold a non-empty JSON list of turns", field="conversation")
    turns = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):  # files hold text turns
            raise InvalidInputError(f"turn {i} of {path} needs a \"text\" string", field=f"conversation[{i}].text")
        speaker = item.get("speaker")
        if speaker is not None and not isinstance(speaker, str):
            raise InvalidInputError(f"turn {i} of {path}: \"speaker\" must be a string", field=f"conversation[{i}].speaker")
        turns.append({"text": item["text"], "speaker": speaker})
    return turns


def sample_conversation() -> list[dict]:
    with resources.files("affect.assets").joinpath("sample_conversation.json").open("rb") as fh:
        return json.loads(fh.read().decode("utf-8"))


def _analyze_turns(turns: list[dict], as_json: bool) -> None:
    """Analyse turns in one conversation, loading only the encoders the turns need."""
    from affect import Analyzer, Turn
    from affect._format import turn_table

    needs = {key for t in turns for key in ("text", "audio", "image") if t.get(key) is not None}
    analyzer = Analyzer(text=True if "text" in needs else None, speech=True if "audio" in needs else None,
                        face=True if "image" in needs else None)
    conversation = analyzer.conversation()
    results = [conversation.analyze(Turn(**t)) for t in turns]
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return
    print(turn_table(results, [t.get("text") for t in turns] if "text" in needs else None))
    for r in results:
        for modality, why in r.absent.items():
            print(f"turn {r.turn_index}: {modality.value}: {why}")
        if len(r.present) > 1:
            print(f"turn {r.turn_index}: " + ", ".join(
                f"{m.value} {res.emotion.value} {res.confidence:.2f} (share {r.shares[m]:.2f})" for m, res in r.modalities.items()))
        for face in r.faces:
            print(f"turn {r.turn_index}: face at x={face.x} y={face.y} {face.width}x{face.height} "
                  f"(detection {face.detection_score:.2f}): {face.result.emotion.value} {face.result.confidence:.2f}")


def _analyze_video(path: Path, fps: float, as_json: bool) -> None:
    from affect._format import table
    from affect.face import FaceEncoder

    frames = FaceEncoder().analyze_video(path, fps=fps)
    if as_json:
        print(json.dumps([f.to_dict() for f in frames], indent=2))
        return
    rows = []
    for frame in frames:
        primary = frame.analysis.primary
        rows.append([f"{frame.time_s:.1f}", str(len(frame.analysis.faces)),
                     primary.result.emotion.value if primary else frame.analysis.reason or "",
                     f"{primary.result.confidence:.2f}" if primary else "",
                     f"{primary.result.valence:+.2f}" if primary else ""])
    print(table(["time s", "faces", "emotion (largest face)", "p", "valence"], rows))


def cmd_analyze(args: argparse.Namespace) -> None:
    if args.video:
        if args.text or args.audio or args.image or args.conversation:
            raise InvalidInputError("--video is analysed on its own", field="video")
        _analyze_video(_existing(args.video, "video"), args.fps, args.json)
        return
    if args.conversation:
        turns = read_conversation(args.conversation)
    else:
        text = None
        if args.text == "-":
            raw = sys.stdin.buffer.read(MAX_CONVERSATION_BYTES + 1)
            text = raw.decode("utf-8") if _is_utf8(raw) else None
            if text is None:
                raise InvalidInputError("--text is not valid UTF-8", field="text")
        elif args.text is not None:  # undecodable argv bytes arrive as lone surrogates
            if any(0xDC80 <= ord(c) <= 0xDCFF for c in args.text):
                raise InvalidInputError("--text is not valid UTF-8", field="text")
            text = args.text
        if text is None and not args.audio and not args.image:
            raise InvalidInputError("give --text, --audio, --image, --video or --conversation", field="input")
        turns = [{"text": text, "speaker": args.speaker,
                  "audio": str(_existing(args.audio, "audio")) if args.audio else None,
                  "image": str(_existing(args.image, "image")) if args.image else None}]
    for i, turn in enumerate(turns):  # refuse bad text before loading any model
        if turn.get("text") is not None:
            turn["text"] = clean_text(turn["text"], field="text" if len(turns) == 1 else f"conversation[{i}].text")
    _analyze_turns(turns, args.json)


def _existing(path: Path, field: str) -> Path:
    if not path.is_file():
        raise InvalidInputError(f"--{field}: no such file: {path}", field=field)
    return path


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def cmd_demo(args: argparse.Namespace) -> None:
    """Start the service, send the sample conversation through the client, stop the service."""
    from affect._demo import run_demo

    run_demo(sample_conversation(), as_json=args.json, local=args.local)


def cmd_models(args: argparse.Namespace) -> None:
    from affect.registry import list_weights

    rows = list_weights()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    from affect._format import table

    print(table(["model", "modality", "file", "trained on"], [[r["id"], r["modality"], r["file"], r["trained_on"]] for r in rows]))


def cmd_serve(args: argparse.Namespace) -> None:
    import asyncio
    import logging

    try:
        from affect_server.app import serve
        from affect_server.config import ServerConfig
    except ImportError as exc:  # the service needs the client package for its generated code
        raise AffectError(f"affect serve needs the affect-client package (pip install clients/python): {exc}") from None
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig.from_args(args)
    if args.ray:
        for warning in config.check():  # the in-process server checks (and binds) before loading models
            logging.getLogger("affect.server").warning("%s", warning)
        try:
            from affect_server.ray_serve import serve_on_ray
        except ImportError as exc:
            raise AffectError(f"affect serve --ray needs Ray Serve (pip install 'ray[serve]'): {exc}") from None
        serve_on_ray(config, args.ray_config, address=args.ray_address, http_port=args.ray_http_port,
                     ready_file=args.ready_file)
        return
    asyncio.run(serve(config, ready_file=args.ready_file))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affect", description="Emotion, sentiment, valence and arousal per conversation turn.")
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="analyse one turn (any of text, audio, image), a video, or a conversation")
    analyze.add_argument("--text", help="one turn of text ('-' reads it from standard input)")
    analyze.add_argument("--audio", type=Path, help="the turn's audio: a WAV, FLAC or OGG file")
    analyze.add_argument("--image", type=Path, help="the turn's image: a JPEG or PNG file")
    analyze.add_argument("--video", type=Path, help="a video file: the faces of frames sampled at --fps")
    analyze.add_argument("--fps", type=float, default=1.0, help="frames per second sampled from --video (default 1)")
    analyze.add_argument("--speaker", help="who said --text")
    analyze.add_argument("--conversation", type=Path, help="JSON file: a list of turns (strings or {text, speaker})")
    analyze.add_argument("--json", action="store_true", help="print JSON instead of a table")
    analyze.set_defaults(func=cmd_analyze)

    demo = sub.add_parser("demo", help="serve the default models and send the sample conversation through the client")
    demo.add_argument("--json", action="store_true")
    demo.add_argument("--local", action="store_true", help="analyse in this process, without the gRPC service")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run the gRPC streaming service",
                           description="Flags override AFFECT_* environment variables, which override defaults.")
    _add_server_arguments(serve)
    serve.add_argument("--ready-file", type=Path, help="write the bound port here once serving (for scripts)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    ray = serve.add_argument_group("Ray Serve (see docs/deploy-ray.md)")
    ray.add_argument("--ray", action="store_true", help="deploy on Ray Serve instead of one process")
    ray.add_argument("--ray-address", help="an existing Ray cluster ('auto' or ray://host:10001); default: start one here")
    ray.add_argument("--ray-config", type=Path, help="JSON: replicas, autoscaling and CPUs per deployment")
    ray.add_argument("--ray-http-port", type=int, default=8000, help="Serve's HTTP proxy port (unused by affect)")
    serve.set_defaults(func=cmd_serve)

    models = sub.add_parser("models", help="list the shipped models")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)
    return parser


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        from affect_server.config import ServerConfig
    except ImportError:
        return
    ServerConfig.add_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except AffectError as exc:
        print(f"affect: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
