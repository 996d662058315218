"""Load: how many conversations one machine holds, against a server that does not batch.

    python -m benchmarks.load [--conversations 1,8,32,128] [--seconds 20] [--json FILE | --out-dir DIR]
        [--mix text,text+speech,text+speech+face] [--soak-turns N] [--ray] [--chaos] [--variant FLAGS]...

Starts the real server (``affect serve``) on loopback twice, in the same run: once as shipped
(micro-batching across conversations) and once as the baseline, which serves the same models
one request at a time (batch size 1, one model worker). Both run side by side and take turns
at each level, so the load of a shared machine touches them alike. A grpc.aio load generator keeps N
conversations busy for a bounded time, each sending its next turn as soon as the last is
answered, cycling through the turn mixes. Reports turns/s, p50/p95/p99 turn latency, errors
and the server's peak resident memory per N, and the ratio to the baseline. ``--soak-turns``
instead sends a fixed number of turns through many short conversations and samples the
server's memory and open-conversation count along the way. ``--ray`` runs the same load
against the service deployed on a local Ray Serve (``affect serve --ray``), beside the
single-process server, and states Ray's overhead per turn (the p50 difference at N=1).
``--chaos`` drives the good conversations twice on one server, alone and then beside
attackers sending malformed, oversized and heavy turns (and bursts of big Analyze calls),
and reports the good turns' p99 in both runs, the server's peak memory and any error that
is not the expected refusal. ``--variant FLAGS`` (repeatable) also drives the shipped server with
those extra flags (``--batch-concurrency 2``, say), beside it in the same run, and reports each
variant's turns/s as a ratio to the shipped server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affect.datasets import default_data_root
from affect_server.config import ServerConfig
from affect_server.launch import ServeProcess, ServerStartError, free_port
from benchmarks._args import names_of, positive_int, positive_ints, positive_number
from benchmarks._data import missing_data_exits
from benchmarks._output import add_output_options, report_json
from benchmarks._report import Report, load_curves_png, publish

# The run of each committed report (benchmarks/results/<name>.json), by mode: a run with other
# values of these options is another run and names its output (benchmarks/_output.py).
THROUGHPUT_RUN = {"conversations": "1,8,32,128", "seconds": 20.0, "mix": "text,text+speech,text+speech+face",
                  "runtime": None, "baseline_runtime": None, "no_baseline": False}
COMMITTED_RUNS = {
    "load": THROUGHPUT_RUN,
    "load-ray": THROUGHPUT_RUN,
    "load-variants": {**THROUGHPUT_RUN, "conversations": "8,32", "variant": ["--batch-concurrency 2", "--model-threads 2"]},
    "load-chaos": {**THROUGHPUT_RUN, "conversations": "8"},
    "load-soak": {"soak_turns": 12000, "runtime": None},
}
# The servers started here read every `affect serve` setting from its AFFECT_* variable when no flag
# gives it (the weights, --runtime, --model-threads, the face detector's settings, ...), as the
# committed runs had none of them set.
SERVER_ENVIRONMENT = tuple(ServerConfig.environment_variables().values())

# One replica per deployment on this 2-core machine, one thread per encoder replica.
RAY_LAYOUT = {"ingress": {"replicas": 1, "num_cpus": 0.5}, "text": {"replicas": 1, "num_cpus": 0.5},
              "speech": {"replicas": 1, "num_cpus": 0.5}, "face": {"replicas": 1, "num_cpus": 0.5}, "model_threads": 1}

TEXTS = [
    "Hi, I'm calling about my order, it still hasn't arrived.",
    "I've been waiting for over two weeks now.",
    "Can you please just tell me where it is?",
    "That's really disappointing, I needed it for Friday.",
    "Oh great, thank you so much for sorting that out!",
    "Honestly this is the third time this has happened.",
]


# The RAVDESS test clip the committed load and profile reports sent (actor 24, fearful, 3.8 s).
PAYLOAD_CLIP = "03-01-06-02-01-01-24"


@dataclass
class Payloads:
    audio: bytes  # a FLAC turn
    image: bytes  # a PNG webcam frame with one face
    audio_name: str  # the clip's file name


def payload_sources(data_root: Path) -> tuple[Path, np.ndarray]:
    """The test data the payloads are made from: a RAVDESS test clip (``PAYLOAD_CLIP``, or the
    slice's first clip when a partial slice lacks it) and the FER-2013 test slice's angry faces
    (``DatasetNotFoundError`` when there is no clip or no angry face under ``data_root``)."""
    from affect.datasets import DatasetNotFoundError
    from affect.datasets.face import read_fer2013_test
    from affect.datasets.ravdess import read_test_slice
    from affect.labels import Emotion, emotion_index

    clips = read_test_slice(data_root)
    audio = next((clip.path for clip in clips if clip.path.stem == PAYLOAD_CLIP), clips[0].path)
    root = data_root / "face" / "fer2013-test-slice"
    faces, labels, _ = read_fer2013_test(root, None, None)
    angry = faces[labels == emotion_index(Emotion.ANGER)]
    if not len(angry):
        raise DatasetNotFoundError(f"no angry FER-2013 test face in {root}")
    return audio, angry


def load_payloads(data_root: Path) -> Payloads:
    import cv2

    from affect.face import FaceEncoder

    audio, faces = payload_sources(data_root)
    detector = FaceEncoder()
    for face in faces:  # the first one found
        canvas = np.full((320, 320), 110, np.uint8)
        canvas[60:260, 60:260] = cv2.resize(face, (200, 200), interpolation=cv2.INTER_CUBIC)
        image = cv2.imencode(".png", canvas)[1].tobytes()
        if detector.analyze(image).faces:
            return Payloads(audio.read_bytes(), image, audio.name)
    raise SystemExit("no test face was detected")


class ServerProcess:
    """``affect serve`` in its own process, on a free loopback port (``affect_server.launch``)."""

    def __init__(self, extra_args: list[str], max_in_flight_turns: int = 64) -> None:
        """``max_in_flight_turns``: admission's cap (the server's default 64), raised for a run that
        measures throughput with more conversations than that, so every turn is served rather
        than refused as busy (the cap itself is measured by the chaos mode and the tests)."""
        port = ["--port", str(free_port())] if "--ray" in extra_args else []
        self.metrics_port = free_port() if "--ray" not in extra_args else 0
        if self.metrics_port:
            port += ["--metrics-port", str(self.metrics_port)]
        self._server = ServeProcess(*port, "--max-turns-per-second", "1000", "--max-conversations", "10000", "--max-conversations-per-peer", "10000",
                                    "--max-in-flight-turns", str(max(64, max_in_flight_turns)),
                                    "--max-in-flight-share-per-peer", "1",  # every conversation comes from here
                                    "--log-level", "warning", *extra_args,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc = self._server.proc
        try:
            self._server.wait_ready(300)
        except ServerStartError:
            raise SystemExit(f"server {extra_args} did not start") from None
        self.target = self._server.target

    def reset_peak_rss(self) -> None:
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        except OSError:
            pass

    def peak_rss_mb(self) -> float:
        """Peak resident memory: of the server process, or summed over every process of a
        Ray deployment (each replica's own peak; they need not peak together)."""
        return sum(_status_mb(pid, "VmHWM:") for pid in self._pids())

    def rss_mb(self) -> float:
        return sum(_status_mb(pid, "VmRSS:") for pid in self._pids())

    def gauges(self) -> dict[str, float]:
        """The server's Prometheus gauges (needs ``--metrics-port``), read over HTTP."""
        if not self.metrics_port:
            return {}
        import urllib.request

        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                if line and not line.startswith("#") and len(line.split()) == 2}

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and every process below it."""
        return sum(_cpu_seconds(pid) for pid in self._pids())

    def _pids(self) -> list[int]:
        return [self.proc.pid, *_descendants(self.proc.pid)]

    def stop(self) -> None:
        self._server.stop(60)


def _status_mb(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), from ``/proc/<pid>/stat``; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (Ray's raylet, GCS and replica workers for --ray)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _turn_kwargs(mix: str, i: int, payloads: Payloads) -> dict:
    from affect_client import Audio, Image
    from affect_proto import affect_pb2 as pb

    parts = mix.split("+")
    return {
        "text": TEXTS[i % len(TEXTS)] if "text" in parts else None,
        "audio": Audio(payloads.audio, pb.AUDIO_FILE) if "speech" in parts else None,
        "images": [Image.encoded(payloads.image)] if "face" in parts else (),
        "speaker": "caller",
    }


async def drive(target: str, conversations: int, seconds: float, mixes: list[str], payloads: Payloads) -> dict:
    """N conversations, each sending turns back to back until the time is up. A turn refused as
    busy is an error, not waited out (``busy_retries=0``), as in the runs recorded before the
    client's default became 3 retries."""
    from affect_client import AffectClientError, AsyncAffectClient

    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def one(client, k: int) -> None:
        nonlocal errors
        try:
            async with client.conversation() as conversation:
                i = k
                while time.monotonic() < stop_at:
                    kwargs = _turn_kwargs(mixes[i % len(mixes)], i, payloads)
                    started = time.perf_counter()
                    try:
                        await conversation.send(**kwargs)
                        latencies.append(time.perf_counter() - started)
                    except AffectClientError:
                        errors += 1
                    i += 1
        except AffectClientError:
            errors += 1

    async with AsyncAffectClient(target, turn_timeout=120, max_retries=0, busy_retries=0) as client:
        started = time.monotonic()
        await asyncio.gather(*(one(client, k) for k in range(conversations)))
        elapsed = time.monotonic() - started
    lat = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return {"turns": len(latencies), "turns_per_s": len(latencies) / elapsed, "errors": errors,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99))}


def chaos_turns(payloads: Payloads) -> list[tuple[str, object, set[str]]]:
    """(name, wire turn, outcomes expected) of the attackers' turns: malformed, over a limit,
    or heavy but within the limits (answered on the heavy lane, or refused as busy)."""
    import io

    import soundfile as sf

    from affect_proto import affect_pb2 as pb

    samples, rate = sf.read(io.BytesIO(payloads.audio), dtype="float32")
    pcm = (samples * 32767).astype("<i2").tobytes()
    long_speech = np.resize(samples, 100 * rate)  # 100 s of real speech: heavy, within the limits

    def encoded(data: np.ndarray, at: int, fmt: str) -> bytes:
        buf = io.BytesIO()
        sf.write(buf, data, at, format=fmt)
        return buf.getvalue()

    wav = bytearray(encoded(samples, rate, "WAV"))
    wav[wav.index(b"data") + 4: wav.index(b"data") + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    refused, busy_or_ok = {"INVALID_ARGUMENT"}, {"OK", "RESOURCE_EXHAUSTED"}
    audio, image = pb.Audio, pb.Image
    return [
        ("rate-48001", pb.Turn(audio=audio(data=pcm, encoding=pb.PCM_S16LE, sample_rate_hz=48_001)), refused),
        ("rate-16001", pb.Turn(audio=audio(data=pcm, encoding=pb.PCM_S16LE, sample_rate_hz=16_001)), busy_or_ok),
        ("mp3", pb.Turn(audio=audio(data=encoded(samples, rate, "MP3"), encoding=pb.AUDIO_FILE)), refused),
        ("wav-streamed", pb.Turn(audio=audio(data=bytes(wav), encoding=pb.AUDIO_FILE)), refused),
        ("garbage-file", pb.Turn(audio=audio(data=b"\x00garbage" * 500, encoding=pb.AUDIO_FILE)), refused),
        ("too-long", pb.Turn(audio=audio(data=bytes(2 * 16_000 * 130), encoding=pb.PCM_S16LE, sample_rate_hz=16_000)), refused),
        ("strips", pb.Turn(images=[image(data=bytes(16_384), encoding=pb.RAW_GRAY8, width=16_384, height=1)] * 8), refused),
        ("bad-utf8", pb.Turn(text=b"\xff\xfe"), refused),
        ("heavy-speech", pb.Turn(audio=audio(data=(long_speech * 32767).astype("<i2").tobytes(), encoding=pb.PCM_S16LE,
                                             sample_rate_hz=rate)), busy_or_ok),
        ("heavy-pixels", pb.Turn(images=[image(data=payloads.image, encoding=pb.ENCODED)]
                                 + [image(data=np.full(2048 * 2048, 90, np.uint8).tobytes(), encoding=pb.RAW_GRAY8,
                                          width=2048, height=2048)] * 3), busy_or_ok),
    ]


async def attack(target: str, seconds: float, payloads: Payloads, attackers: int = 2) -> dict:
    """Attacker conversations sending chaos turns back to back, and a burst of big Analyze
    calls every few seconds; counts the outcomes that are not the expected ones."""
    import grpc

    from affect_proto import affect_pb2 as pb

    turns = chaos_turns(payloads)
    stop_at = time.monotonic() + seconds
    counts = {"attack_turns": 0, "attack_unexpected": 0}
    unexpected: list[str] = []
    big = pb.AnalyzeRequest(turn=pb.Turn(audio=pb.Audio(
        data=(0.01 * np.random.default_rng(0).standard_normal(3_900_000)).astype("<f4").tobytes(),
        encoding=pb.FLOAT32_LE, sample_rate_hz=48_000))).SerializeToString()

    async with grpc.aio.insecure_channel(target, options=[("grpc.max_send_message_length", 32 * 2**20)]) as channel:
        converse = channel.stream_stream("/affect.v1.AffectService/Converse",
                                         request_serializer=pb.ConverseRequest.SerializeToString,
                                         response_deserializer=pb.ConverseResponse.FromString)
        analyze = channel.unary_unary("/affect.v1.AffectService/Analyze", request_serializer=lambda b: b,
                                      response_deserializer=pb.AnalyzeResponse.FromString)

        async def attacker(k: int) -> None:
            call = converse(timeout=seconds + 120)
            await call.write(pb.ConverseRequest(open=pb.OpenConversation()))
            await call.read()
            i = k
            while time.monotonic() < stop_at:
                name, turn, expected = turns[i % len(turns)]
                await call.write(pb.ConverseRequest(turn=turn))
                answer = await call.read()
                kind = answer.WhichOneof("kind")
                outcome = "OK" if kind == "result" else next(c.name for c in grpc.StatusCode if c.value[0] == answer.error.code)
                counts["attack_turns"] += 1
                if outcome not in expected:
                    counts["attack_unexpected"] += 1
                    unexpected.append(f"{name}: {outcome}")
                i += 1
            await call.done_writing()

        async def bursts() -> None:
            while time.monotonic() < stop_at:
                async def one() -> None:
                    try:
                        await analyze(big, timeout=120)
                    except grpc.aio.AioRpcError as error:
                        if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                            counts["attack_unexpected"] += 1
                            unexpected.append(f"analyze burst: {error.code().name}")
                    counts["attack_turns"] += 1

                await asyncio.gather(*(one() for _ in range(20)))
                await asyncio.sleep(3.0)

        await asyncio.gather(*(attacker(k) for k in range(attackers)), bursts())
    return {**counts, "unexpected": unexpected[:20]}


def run_chaos(levels: list[int], seconds: float, mixes: list[str], payloads: Payloads) -> tuple[dict, list, list[str]]:
    """The good conversations alone, then beside the attackers, on one server."""
    server = ServerProcess(["--batch-max-size", "32", "--batch-max-wait-ms", "5", "--workers", "2"])
    try:
        asyncio.run(drive(server.target, 2, 3.0, mixes, payloads))  # warm-up
        n = levels[0]
        server.reset_peak_rss()
        clean = asyncio.run(drive(server.target, n, seconds, mixes, payloads))
        clean_peak = server.peak_rss_mb()
        server.reset_peak_rss()

        async def both():
            return await asyncio.gather(drive(server.target, n, seconds, mixes, payloads), attack(server.target, seconds, payloads))

        chaos, attacked = asyncio.run(both())
        chaos_peak = server.peak_rss_mb()
    finally:
        server.stop()
    metrics = {"chaos_good_p99_ms": chaos["p99_ms"], "clean_good_p99_ms": clean["p99_ms"],
               "chaos_p99_ratio": chaos["p99_ms"] / max(clean["p99_ms"], 1e-9),
               "chaos_good_turns_per_s": chaos["turns_per_s"], "clean_good_turns_per_s": clean["turns_per_s"],
               "chaos_peak_rss_mb": chaos_peak, "clean_peak_rss_mb": clean_peak,
               "chaos_errors_unexpected": float(chaos["errors"] + attacked["attack_unexpected"]),
               "chaos_good_errors": float(chaos["errors"]), "chaos_attack_turns": float(attacked["attack_turns"])}
    rows = [["clean", n, clean["turns"], clean["turns_per_s"], clean["p50_ms"], clean["p99_ms"], clean["errors"], clean_peak],
            ["chaos", n, chaos["turns"], chaos["turns_per_s"], chaos["p50_ms"], chaos["p99_ms"], chaos["errors"], chaos_peak]]
    notes = [f"{n} good conversations for {seconds:g} s each run (turns cycle through {', '.join(mixes)}); in the chaos "
             f"run 2 attacker conversations send {len(chaos_turns(payloads))} kinds of bad or heavy turns back to back "
             f"({attacked['attack_turns']} in all with the bursts) and every 3 s a burst of 20 concurrent 15 MB Analyze "
             "calls (82 s of float audio each) arrives.",
             "Unexpected errors: any error of a good turn, and any attacker outcome other than the expected refusal "
             "(INVALID_ARGUMENT for malformed or over-limit turns; a result or RESOURCE_EXHAUSTED for heavy ones)."
             + (f" Seen: {'; '.join(attacked['unexpected'])}" if attacked["unexpected"] else ""),
             "Peak RSS: the server process's VmHWM over the run (reset before each run)."]
    return metrics, rows, notes


async def soak(server: ServerProcess, total_turns: int, per_conversation: int, concurrency: int, payloads: Payloads) -> dict:
    """A fixed number of turns through many short conversations; memory sampled along the way."""
    from affect_client import AsyncAffectClient

    samples, sent = [], 0
    async with AsyncAffectClient(server.target, turn_timeout=120, max_retries=0, busy_retries=0) as client:
        async def conversation_of(k: int) -> None:
            async with client.conversation() as conversation:
                for i in range(per_conversation):
                    await conversation.send(**_turn_kwargs("text", k + i, payloads))

        while sent < total_turns:
            await asyncio.gather(*(conversation_of(sent + k) for k in range(concurrency)))
            sent += concurrency * per_conversation
            gauges = server.gauges()
            samples.append((sent, server.rss_mb(), gauges.get("affect_active_conversations", float("nan")),
                            gauges.get("affect_conversation_states", float("nan"))))
    return {"samples": samples}


def beside_shipped(metrics: dict[str, float], levels: list[int], prefix: str, title: str) -> tuple[list[str], list[list]]:
    """The table of a server driven beside the shipped one in the same run (its metrics under
    ``prefix``): per level both servers' turns/s, p50, p99 and CPU a turn, and the ratio of turns/s,
    which is also stored as ``<prefix>_throughput_ratio_<n>``."""
    rows = []
    for n in levels:
        ratio = metrics[f"{prefix}_turns_per_s_{n}"] / max(metrics[f"turns_per_s_{n}"], 1e-9)
        metrics[f"{prefix}_throughput_ratio_{n}"] = ratio
        rows.append([n, metrics[f"turns_per_s_{n}"], metrics[f"{prefix}_turns_per_s_{n}"], ratio,
                     *(metrics[f"{p}{key}_{n}"] for key in ("p50_ms", "p99_ms", "server_cpu_ms_per_turn")
                       for p in ("", f"{prefix}_"))])
    columns = ["conversations", "turns/s", f"{title} turns/s", f"{title} / shipped", "p50 ms", f"{title} p50 ms",
               "p99 ms", f"{title} p99 ms", "CPU ms/turn", f"{title} CPU ms/turn"]
    return columns, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conversations", type=positive_ints, default=THROUGHPUT_RUN["conversations"])
    ap.add_argument("--seconds", type=positive_number, default=THROUGHPUT_RUN["seconds"], help="per level and server")
    ap.add_argument("--mix", type=names_of(("text", "speech", "face"), joined_by="+"), default=THROUGHPUT_RUN["mix"])
    ap.add_argument("--data-root", type=Path, default=None)
    add_output_options(ap)  # the report's name: load.json, load-ray, load-soak, load-chaos or load-variants.json
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--soak-turns", type=positive_int, default=None, help="run the soak mode with this many turns instead")
    ap.add_argument("--ray", action="store_true", help="also (instead of the baseline) drive the service on a local Ray Serve")
    ap.add_argument("--chaos", action="store_true", help="good conversations alone, then beside attackers (first --conversations level)")
    ap.add_argument("--runtime", default=None, help="affect serve --runtime for every server (default: the server's own)")
    ap.add_argument("--variant", action="append", default=[], metavar="FLAGS",
                    help="also drive the shipped server with these extra flags, e.g. '--batch-concurrency 2' (repeatable)")
    ap.add_argument("--baseline-runtime", default=None, help="--runtime of the unbatched baseline only (e.g. torch)")
    args = ap.parse_args(argv)
    if args.variant and (args.soak_turns or args.chaos):
        ap.error("--variant goes with the throughput run, not with --soak-turns or --chaos")

    name = ("load-soak" if args.soak_turns else "load-ray" if args.ray else "load-chaos" if args.chaos
            else "load-variants" if args.variant else "load")
    args.json = report_json(ap, args, name, COMMITTED_RUNS[name], SERVER_ENVIRONMENT)
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    levels = [int(n) for n in args.conversations.split(",")]
    mixes = args.mix.split(",")
    with missing_data_exits("benchmarks.load"):
        payloads = load_payloads(args.data_root or default_data_root())
    servers = {"affect": ["--batch-max-size", "32", "--batch-max-wait-ms", "5", "--workers", "2"]}
    if args.ray:
        ray_config = Path(tempfile.mkdtemp()) / "ray.json"
        ray_config.write_text(json.dumps(RAY_LAYOUT))
        servers["ray"] = ["--ray", "--ray-config", str(ray_config), "--ray-http-port", str(free_port()),
                          "--batch-max-size", "32", "--batch-max-wait-ms", "5"]
    elif not args.no_baseline and not args.soak_turns:
        servers["baseline"] = ["--batch-max-size", "1", "--batch-max-wait-ms", "0", "--workers", "1"]
    variants = {f"variant{i}": flags for i, flags in enumerate(args.variant, 1)}
    for name, flags in variants.items():
        servers[name] = [*servers["affect"], *shlex.split(flags)]
    if args.runtime:
        servers = {name: [*extra, "--runtime", args.runtime] for name, extra in servers.items()}
    if args.baseline_runtime and "baseline" in servers:
        servers["baseline"] = [*servers["baseline"], "--runtime", args.baseline_runtime]

    metrics: dict[str, float] = {}
    rows = []
    notes: list[str] = []
    if args.chaos:
        metrics, rows, notes = run_chaos(levels, args.seconds, mixes, payloads)
        report = Report(task="load-chaos", metrics=metrics, tables={"Good turns, alone and under attack": (
            ["run", "conversations", "turns", "turns/s", "p50 ms", "p99 ms", "errors", "peak RSS MB"], rows)}, notes=notes)
    elif args.soak_turns:
        server = ServerProcess(servers["affect"])
        try:
            result = asyncio.run(soak(server, args.soak_turns, per_conversation=5, concurrency=16, payloads=payloads))
        finally:
            server.stop()
        samples = result["samples"]
        first, last = samples[0][1], samples[-1][1]
        tail = samples[len(samples) // 2:]  # the second half: past the warm-up of allocators and caches
        metrics = {"soak_turns": float(samples[-1][0]), "soak_rss_first_mb": first, "soak_rss_last_mb": last,
                   "soak_rss_growth_mb": last - first, "soak_rss_growth_second_half_mb": tail[-1][1] - tail[0][1],
                   "soak_open_streams_last": samples[-1][2], "soak_conversation_states_last": samples[-1][3],
                   "soak_conversation_states_max": max(s[3] for s in samples)}
        rows = [[n, f"{mb:.0f}", f"{streams:g}", f"{states:g}"] for n, mb, streams, states in samples]
        report = Report(task="load-soak", metrics=metrics,
                        tables={"Server memory and held state during the soak": (
                            ["turns sent", "RSS MB", "open streams", "conversation states held"], rows)},
                        notes=["Conversations of 5 text turns, 16 at a time, opened and closed until the turn count is "
                               "reached; after each round (all 16 closed) the server's RSS and its Prometheus gauges are read.",
                               "Flat memory and zero states held between rounds mean no conversation state leaks."])
    else:
        running: dict[str, ServerProcess] = {}
        curves: dict[str, list[tuple[int, float, float]]] = {}  # server -> (conversations, turns/s, p99 ms), for the plot
        try:
            for name, extra in servers.items():
                running[name] = ServerProcess(extra, max_in_flight_turns=max(levels))
                asyncio.run(drive(running[name].target, 2, 3.0, mixes, payloads))  # warm-up
            # Levels outside, servers inside: the runs of one level follow each other, so a change
            # in the machine's load (it is shared) touches every server alike. The last level is
            # one conversation of text-only turns (text_only_p99_ms_1).
            for n, level_mixes in [*((n, mixes) for n in levels), (1, ["text"])]:
                text_only = level_mixes == ["text"] and level_mixes != mixes
                for name, server in running.items():
                    server.reset_peak_rss()
                    cpu_before, client_before, wall_before = server.cpu_seconds(), time.process_time(), time.monotonic()
                    r = asyncio.run(drive(server.target, n, args.seconds, level_mixes, payloads))
                    wall = time.monotonic() - wall_before
                    server_cpu, client_cpu = server.cpu_seconds() - cpu_before, time.process_time() - client_before
                    cpu = {"server_cpu_ms_per_turn": 1000 * server_cpu / max(r["turns"], 1),
                           "server_cores": server_cpu / wall, "client_cores": client_cpu / wall}
                    prefix = "" if name == "affect" else f"{name}_"
                    if text_only:
                        metrics[f"{prefix}text_only_p99_ms_1"] = r["p99_ms"]
                        metrics[f"{prefix}text_only_p50_ms_1"] = r["p50_ms"]
                        metrics[f"{prefix}text_only_turns_per_s_1"] = r["turns_per_s"]
                    else:
                        metrics[f"{prefix}turns_per_s_{n}"] = r["turns_per_s"]
                        metrics[f"{prefix}p99_ms_{n}"] = r["p99_ms"]
                        metrics[f"{prefix}p50_ms_{n}"] = r["p50_ms"]
                        for key, value in cpu.items():
                            metrics[f"{prefix}{key}_{n}"] = value
                        if name == "affect":
                            metrics[f"errors_{n}"] = float(r["errors"])
                            metrics[f"peak_rss_mb_{n}"] = server.peak_rss_mb()
                    if not text_only:
                        curves.setdefault(f"{name} ({variants[name]})" if name in variants else name, []).append(
                            (n, r["turns_per_s"], r["p99_ms"]))
                    label = f"{name} (text only)" if text_only else name
                    rows.append([label, n, r["turns"], r["turns_per_s"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["errors"],
                                 server.peak_rss_mb(), cpu["server_cpu_ms_per_turn"], cpu["server_cores"], cpu["client_cores"]])
                    print(f"{label} N={n}: {r['turns_per_s']:.1f} turns/s, p99 {r['p99_ms']:.0f} ms, {r['errors']} errors",
                          file=sys.stderr)
        finally:
            for server in running.values():
                server.stop()
        rows.sort(key=lambda row: (list(servers).index(row[0].split(" ")[0]), "text only" in row[0], row[1]))
        tables = {"Turns per second and latency": (
            ["server", "conversations", "turns", "turns/s", "p50 ms", "p95 ms", "p99 ms", "errors", "peak RSS MB",
             "server CPU ms/turn", "server cores busy", "load generator cores busy"], rows)}
        if "baseline" in servers:
            ratio_rows = []
            for n in levels:
                ratio = metrics[f"turns_per_s_{n}"] / max(metrics[f"baseline_turns_per_s_{n}"], 1e-9)
                metrics[f"throughput_ratio_{n}"] = ratio
                ratio_rows.append([n, ratio, metrics[f"p99_ms_{n}"], metrics[f"baseline_p99_ms_{n}"]])
            tables["Against the unbatched baseline"] = (["conversations", "turns/s ratio", "p99 ms", "baseline p99 ms"], ratio_rows)
        for name, flags in variants.items():
            tables[f"{name} ({flags}) against the shipped server"] = beside_shipped(metrics, levels, name, name)
            notes.append(f"'{name}' is the shipped server with the extra flags {flags!r}, in the same run.")
        if "ray" in servers:
            tables["Ray Serve beside the single process"] = beside_shipped(metrics, levels, "ray", "Ray")
            low = min(levels)
            metrics["ray_overhead_ms_per_turn"] = metrics[f"ray_p50_ms_{low}"] - metrics[f"p50_ms_{low}"]
            notes.append(f"Ray Serve overhead per turn: {metrics['ray_overhead_ms_per_turn']:.1f} ms "
                         f"(median turn latency at {low} conversation(s), Ray minus single process). Ray layout: "
                         f"{json.dumps(RAY_LAYOUT)}; memory is summed over every Ray process (raylet, GCS, proxy, replicas).")
            notes.append("Ray's processes (raylet, GCS, replicas) are not children this benchmark waits for, so their CPU "
                         "counts as 'other processes' in the line at the top; the 'server cores busy' column sums them.")
        notes.append(f"Machine load (1-minute load average, {os.cpu_count()} cores): {load_before:.1f} at the start, "
                     f"{os.getloadavg()[0]:.1f} at the end (the servers' own load included); compare each server "
                     "with the other in this run.")
        notes.append("Face detector, both servers: min_face_fraction "
                     f"{os.environ.get('AFFECT_FACE_MIN_FRACTION') or '0.1 (the default; AFFECT_FACE_MIN_FRACTION sets it)'}; "
                     "a full search once in "
                     f"{os.environ.get('AFFECT_FACE_FULL_SEARCH_EVERY') or '10 (the default; AFFECT_FACE_FULL_SEARCH_EVERY sets it)'} "
                     "of a conversation's images, the tracked faces' surroundings in between (every conversation sends "
                     "the same frame, so the face stays where it was).")
        notes += [f"Each level runs {args.seconds:g} s; turns cycle through {', '.join(mixes)}.",
                  f"Every server admits {max(64, max(levels))} turns in flight (--max-in-flight-turns; the default "
                  "is 64), so a level with more conversations than 64 measures service, not refusals.",
                 "Baseline: the same server and models with batch size 1 and one model worker (no batching), on "
                 f"the runtime {args.baseline_runtime or args.runtime or 'auto (the server default)'} (see affect.onnx); "
                 f"the batched server's: {args.runtime or 'auto (the server default)'}.",
                 "text_only_p99_ms_1: one conversation sending text-only turns back to back (the rows '(text only)'), "
                 "p99 of the turn latency through gRPC.",
                 "The servers run side by side and take turns at each level (levels in order, then the text-only run).",
                 "CPU: the server's user + system time over the level (every thread and child process), per turn answered "
                 "and per second of the level (cores busy); the load generator (this process, the gRPC client) shares the "
                 f"same {os.cpu_count()} cores, so a server can use at most what the generator leaves.",
                 f"Audio is a RAVDESS test clip ({payloads.audio_name}); the face is a FER-2013 test face enlarged on a "
                 "320x320 frame."]
        plot = load_curves_png(curves, args.json.with_suffix(".png"),
                               f"{' / '.join(mixes)} turns in turn, {args.seconds:g} s a level")
        report = Report(task="load", metrics=metrics, tables=tables, notes=notes, plots=[str(plot)])
    return publish(report, args.json, args.markdown)


if __name__ == "__main__":
    raise SystemExit(main())
