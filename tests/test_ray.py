"""The service on a local Ray Serve: two ingress replicas, one killed while conversations run.

Starts a real Ray on this machine (text and face encoders, to keep it to a minute), drives
concurrent conversations through Serve's gRPC proxy with the unchanged Python client, kills
one ingress replica mid-run, and checks what a user would see: the conversations on the dead
replica end with UNAVAILABLE (retryable), the others go on, new ones are served. Ray is
stopped at the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator

import grpc
import pytest

ray = pytest.importorskip("ray")
from ray import serve  # noqa: E402

from affect_client import (  # noqa: E402
    AffectClient, AsyncAffectClient, Image, Modality, ResourceExhaustedError, TurnRefusedError, UnauthenticatedError,
    UnavailableError)
from affect_server.cli import _stop_at_once_until_serving  # noqa: E402
from affect_server.config import ServerConfig  # noqa: E402
from affect_server.launch import free_port as _free_port  # noqa: E402
from affect_server.ray_app import DeploymentScale, RaySettings, build_app  # noqa: E402
from affect_proto import affect_pb2 as pb  # noqa: E402
from affect_proto import affect_pb2_grpc as pb_grpc  # noqa: E402
from affect_proto import rules  # noqa: E402
from affect_server.ray_serve import start_on_ray, stop_on_ray  # noqa: E402

TOKEN = "ray-test-token"
LINES = ["Hello, my parcel never arrived.", "This is the third time I call!", "Thank you, that helps a lot."]


METRICS_PORT = _free_port()
HEAVY_PIXELS = 200_000  # a 640x480 frame is a heavy turn here, a 320x240 one is not
STARTED_LOG: list[str] = []  # what start_on_ray logged
# The SIGTERM and SIGINT handlers: before `affect serve`'s stop-at-once ones were set, those, and
# after Ray started (start_on_ray, handed their end as `affect serve --ray` hands it)
HANDLERS: dict[str, tuple[object, object]] = {}


class _Kept(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        STARTED_LOG.append(record.getMessage())


@pytest.fixture(scope="module")
def ray_target() -> Iterator[str]:
    port = _free_port()
    config = ServerConfig(port=port, speech_model="none", max_turns_per_second=1000, token=TOKEN,
                          metrics_port=METRICS_PORT, heavy_image_pixels=HEAVY_PIXELS)
    settings = RaySettings(ingress=DeploymentScale(replicas=2, num_cpus=0.25),
                           text=DeploymentScale(replicas=1, num_cpus=0.25), face=DeploymentScale(num_cpus=0.25),
                           heavy=DeploymentScale(num_cpus=0.25))
    kept, log = _Kept(), logging.getLogger("affect.server.ray")
    level = log.level
    log.addHandler(kept)
    log.setLevel(logging.INFO)
    try:
        try:
            HANDLERS["before"] = _handlers()
            end_stop_at_once = _stop_at_once_until_serving()
            HANDLERS["stop_at_once"] = _handlers()
            try:
                start_on_ray(config, settings, http_port=_free_port(), num_cpus=2, before_ray_starts=end_stop_at_once)
            finally:
                HANDLERS["started"] = _handlers()
                end_stop_at_once()  # if Ray's start failed before it ended them
        finally:
            log.removeHandler(kept)
            log.setLevel(level)
        # turns pass through the object store: a cluster started by affect never spills them to disk
        assert ray._private.worker._global_node._config.get("automatic_object_spilling_enabled") is False
        target = f"127.0.0.1:{port}"
        _wait_until_serving(target)
        yield target
    finally:
        stop_on_ray()
    assert not ray.is_initialized()


def _handlers() -> tuple[object, object]:
    """This process's SIGTERM and SIGINT handlers."""
    return signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)


def _wait_until_serving(target: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with AffectClient(target, max_retries=0, timeout=10, token=TOKEN) as client:
                client.list_models()
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _ingress_replicas() -> list[str]:
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == "serve" and "AffectIngress" in a["name"]]


def test_models_listed_and_a_conversation_keeps_its_context(ray_target):
    # `application` names the Serve application (Ray's metadata); optional with one application
    with AffectClient(ray_target, token=TOKEN, application="affect") as client:
        assert sorted(m.modality for m in client.list_models()) == ["face", "text"]
        with client.conversation() as conversation:
            results = [conversation.send(line, speaker="caller") for line in LINES]
            limits = conversation.limits
    assert [r.turn_index for r in results] == [0, 1, 2]
    # the turn limits are told, but the message size, which is Serve's proxy's, not max_message_mb
    assert limits.max_text_chars == ServerConfig().max_text_chars and limits.max_images == 8
    assert limits.max_message_bytes == 0
    assert results[1].emotion == "anger"
    # one stream stays on one replica: the state (turn index, trajectory) continued across turns
    assert results[2].state.turns == 3 and results[2].state.speakers[0].turns == 3
    # a conversation's own text prior crosses to the text deployment with its turns
    with AffectClient(ray_target, token=TOKEN) as client, client.conversation(text_prior="neutral=0.9,anger=0.1") as at_desk:
        desk = [at_desk.send(line, speaker="caller") for line in LINES]
    assert all(r.emotion in ("neutral", "anger") for r in desk)
    assert desk[0].fused.emotions["neutral"] > results[0].fused.emotions["neutral"]


def test_the_licences_of_the_models_it_serves_are_logged_at_start(ray_target):
    """``affect serve --ray`` loads its models in Ray's workers and logged no licence line, which
    plain ``affect serve`` logs once its models are loaded: it logs the same line once every
    replica is up, for the models the application serves."""
    from affect.face.weights import FaceWeights
    from affect.forecast import ForecastWeights
    from affect.fusion import FusionWeights
    from affect.registry import licences
    from affect.text.weights import TextWeights

    ids = [w.DEFAULT.value.id for w in (FaceWeights, TextWeights, FusionWeights, ForecastWeights)]
    (line,) = [line for line in STARTED_LOG if "licences:" in line]
    assert line == f"models loaded: {', '.join(ids)}; licences: {licences(ids)}: see `affect models`"
    assert STARTED_LOG[-2:] == [line, f"affect on Ray Serve: gRPC on 127.0.0.1:{ray_target.rsplit(':', 1)[1]}, application 'affect'"]


def test_affect_serves_stop_at_once_handlers_end_before_ray_starts(ray_target: str) -> None:
    """``affect serve --ray`` stops at once on SIGTERM or SIGINT while it imports (tests/test_server.py)
    and ends that before Ray starts, whose processes stopping at once would leave running: SIGINT's
    handler is the one before again, and SIGTERM's is Ray's own, set by ``ray.init`` after the end
    (ended after it, SIGTERM's would be the one before)."""
    before, stop_at_once, started = HANDLERS["before"], HANDLERS["stop_at_once"], HANDLERS["started"]
    assert stop_at_once[0] is stop_at_once[1] and stop_at_once[0] not in before
    assert started[1] is before[1]
    assert started[0] not in (before[0], stop_at_once[0])


def test_bad_turn_is_refused_and_the_stream_goes_on(ray_target):
    with AffectClient(ray_target, token=TOKEN) as client, client.conversation() as conversation:
        with pytest.raises(TurnRefusedError) as refused:  # the client does not decode files; the server refuses it
            conversation.send(audio=b"not audio at all")
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.field == "turn.audio.data"
        assert conversation.send("Fine, thanks.").turn_index == 0


def test_an_unreadable_message_is_refused_and_the_stream_goes_on(ray_target):
    """Serve's proxy parses each message: with affect's handlers a message that does not parse
    (a speaker name that is not UTF-8) is one refused turn, not the end of the conversation."""
    good = pb.ConverseRequest(turn=pb.Turn(speaker="ab", text=b"Where is my parcel?")).SerializeToString()
    bad = good.replace(b"ab", b"\xff\xfe")
    opening = pb.ConverseRequest(open=pb.OpenConversation()).SerializeToString()
    with grpc.insecure_channel(ray_target) as channel:
        converse = channel.stream_stream("/affect.v1.AffectService/Converse", request_serializer=None,
                                         response_deserializer=pb.ConverseResponse.FromString)
        answers = list(converse(iter([opening, bad, good]), timeout=120,
                                metadata=[("authorization", f"Bearer {TOKEN}")]))
    assert [a.WhichOneof("kind") for a in answers] == ["opened", "error", "result"], answers
    assert answers[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_a_streams_resume_token_arrives_through_the_proxy(ray_target: str) -> None:
    """``ConversationOpened.resume_token``, the secret a takeover needs, is carried by Serve's proxy
    as any field: each stream gets its own. (Which ingress replica a resume reaches is the proxy's
    choice, so the takeover itself is tested in one process: tests/test_server.py.)"""
    opening = pb.ConverseRequest(open=pb.OpenConversation())
    with grpc.insecure_channel(ray_target) as channel:
        converse = pb_grpc.AffectServiceStub(channel).Converse
        tokens = {next(iter(converse(iter([opening]), timeout=120, metadata=[("authorization", f"Bearer {TOKEN}")])))
                  .opened.resume_token for _ in range(2)}
    assert len(tokens) == 2 and all(len(token) >= 22 for token in tokens)


def test_an_analyze_refusal_names_its_field(ray_target: str) -> None:
    """Serve's proxy drops the trailers the server ends a call with (``affect-field``,
    ``affect-reason``, the retry hint); the ingress writes them at the end of the status message
    too (``rules.message_with_trailers``), and the client reads them there: an Analyze turn refused
    through Ray raises ``TurnRefusedError`` naming the field, with the plain server's message."""
    with AffectClient(ray_target, token=TOKEN, max_retries=0) as client:
        with pytest.raises(TurnRefusedError) as refused:
            client.analyze(audio=b"not audio at all", turn_id="t1")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.field, refused.value.turn_id) == ("turn.audio.data", "t1")
    assert refused.value.details == "turn.audio.data: the file is not a readable WAV/FLAC/OGG file (Format not recognised.)"
    # what another client reads: the same status, the trailers at the end of its message
    request = pb.AnalyzeRequest(turn=pb.Turn(audio=pb.Audio(data=b"not audio at all", encoding=pb.AUDIO_FILE)))
    with grpc.insecure_channel(ray_target) as channel, pytest.raises(grpc.RpcError) as raw:
        pb_grpc.AffectServiceStub(channel).Analyze(request, timeout=60, metadata=[("authorization", f"Bearer {TOKEN}")])
    message, carried = rules.trailers_in_message(raw.value.details())
    assert message == refused.value.details
    assert carried == {rules.ABORT_REASON_TRAILER: "invalid", rules.REFUSED_FIELD_TRAILER: "turn.audio.data"}


def test_a_refusal_reaches_the_caller_whole_and_rays_logs_without_its_message(ray_target: str) -> None:
    """Serve logs what a method raises, message and traceback ("Request failed."), to the log files
    of the replica and the proxy: a refusal quoted what the caller sent there (a text prior's
    emotion, ``text prior names 'ZQXMARK'``), and any future message quoting input would have been
    kept on disk. The caller still gets the whole message; Ray's logs name only the status code and
    the reason."""
    from pathlib import Path

    request = pb.AnalyzeRequest(turn=pb.Turn(text=b"hello"), options=pb.ConversationOptions(text_prior="ZQXMARK=1"))
    with grpc.insecure_channel(ray_target) as channel, pytest.raises(grpc.RpcError) as raw:
        pb_grpc.AffectServiceStub(channel).Analyze(request, timeout=60, metadata=[("authorization", f"Bearer {TOKEN}")])
    assert raw.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'ZQXMARK', which is not an emotion" in raw.value.details()
    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    deadline = time.monotonic() + 30
    while True:  # the replica's record of this refusal, once written
        written = "\n".join(path.read_text(errors="replace") for path in logs.rglob("*")
                            if path.is_file() and path.suffix in (".log", ".err", ".out"))
        if "_Aborted: INVALID_ARGUMENT (invalid)" in written or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "_Aborted: INVALID_ARGUMENT (invalid)" in written and "ZQXMARK" not in written


STRICT_APP = "affect-strict"  # a second application on the same Serve, for the calls the server ends itself
STRICT_IDLE_S = 3.0


@pytest.fixture(scope="class")
def strict_target(ray_target: str) -> Iterator[str]:
    """An application of one ingress replica and a text encoder beside the module's, on the same
    proxy (clients name it: ``application``), with limits small enough to reach: an idle timeout
    of 3 s, one open conversation, one Analyze call a second. Deleted after its class: with two
    applications, a call that names none is refused NOT_FOUND by the proxy."""
    config = ServerConfig(speech_model="none", face_model="none", idle_timeout_s=STRICT_IDLE_S, max_conversations=1,
                          max_analyze_per_second_per_peer=1.0)
    settings = RaySettings(ingress=DeploymentScale(num_cpus=0.1), text=DeploymentScale(num_cpus=0.1), heavy=None)
    serve.run(build_app(config, settings), name=STRICT_APP, route_prefix=f"/{STRICT_APP}")
    try:
        yield ray_target
    finally:
        serve.delete(STRICT_APP)


class TestWhatTheServerEndsArrivesThroughTheProxy:
    """What the client does on a call the server ends, through Serve's proxy as with plain
    ``affect serve``: an idle close resumed, a retry hint waited for."""

    def test_an_idle_close_is_resumed_on_the_next_send(self, strict_target: str) -> None:
        with AffectClient(strict_target, application=STRICT_APP, max_retries=0) as client, \
                client.conversation() as conversation:
            first = conversation.send(LINES[0], speaker="caller")
            time.sleep(STRICT_IDLE_S + 1.5)  # a caller on hold: the ingress closes the stream, reason "idle"
            second = conversation.send(LINES[1], speaker="caller")
            assert (first.turn_index, second.turn_index) == (0, 1)
            assert second.resumed and second.replayed == 1 and conversation.resumes == 1
            assert second.state.turns == 2  # the replayed turn rebuilt the trajectory on the new stream

    def test_a_refused_stream_is_opened_again_after_its_hint(self, strict_target: str) -> None:
        with AffectClient(strict_target, application=STRICT_APP, max_retries=0, busy_retries=0) as client:
            holder = client.conversation()  # the one conversation the application takes
            with pytest.raises(ResourceExhaustedError) as refused:
                client.conversation()
            assert refused.value.details == "too many open conversations (limit 1)"
            assert refused.value.retry_after == 1.0 and refused.value.reason == "conversations"
            threading.Timer(0.3, holder.close).start()  # its slot is free before the hint is up
            started = time.monotonic()
            with client.with_options(busy_retries=2).conversation() as patient:
                waited = time.monotonic() - started
                assert patient.send(LINES[0]).turn_index == 0
            assert waited >= 1.0  # refused at once, sent again after the hint

    def test_a_busy_analyze_is_sent_again_after_its_hint(self, strict_target: str) -> None:
        with AffectClient(strict_target, application=STRICT_APP, max_retries=0, busy_retries=0) as client:
            time.sleep(1.0)  # the client's Analyze bucket (1 a second) full again after any call before
            client.analyze(LINES[0])
            with pytest.raises(TurnRefusedError) as refused:  # as with plain affect serve: a turn refused as busy
                client.analyze(LINES[1])
            assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and refused.value.field == "turn"
            assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 1.0
            patient = client.with_options(busy_retries=3)
            assert [patient.analyze(line).turn_index for line in LINES] == [0, 0, 0]


def _scraped(port: int) -> dict[tuple[str, frozenset], float]:
    """Each sample's value, summed over the replicas (Ray tags each with its WorkerId)."""
    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name.startswith("ray_affect_"):
                labels = frozenset((k, v) for k, v in sample.labels.items() if k in ("code", "reason", "encoder", "modalities"))
                values[(sample.name, labels)] = values.get((sample.name, labels), 0.0) + sample.value
    return values


def _total(seen: dict, name: str, label: tuple[str, str] | None = None) -> float:
    """A metric's samples summed, over all labels or over those with ``label``."""
    return sum(v for (sample, labels), v in seen.items() if sample == name and (label is None or label in labels))


def _scraped_once(done, timeout: float = 90) -> dict[tuple[str, frozenset], float]:
    """The metrics port read every 2 s until ``done(values)`` holds (Ray's agent exports every
    few seconds, not at the scrape) or ``timeout`` passes; the last reading."""
    deadline, seen = time.monotonic() + timeout, {}
    while time.monotonic() < deadline and not done(seen):
        time.sleep(2)
        try:
            seen = _scraped(METRICS_PORT)
        except OSError:
            seen = {}
    return seen


def test_the_service_metrics_are_exported_by_ray(ray_target):
    """`--metrics-port` on Ray: the cluster's metrics agent exports what the ingress replicas
    and the encoder deployments record, under the in-process names with Ray's prefix."""
    with AffectClient(ray_target, token=TOKEN) as client, client.conversation() as conversation:
        before = conversation.send("Hello there.").turn_index
        conversation.send("Still waiting for my refund.")
        with pytest.raises(TurnRefusedError):
            conversation.send(audio=b"not audio at all")
    assert before == 0
    seen = _scraped_once(lambda seen: seen.get(("ray_affect_turns_total", frozenset()), 0) >= 2
                         and _total(seen, "ray_affect_refused_total", ("code", "INVALID_ARGUMENT")) >= 1)
    refused = _total(seen, "ray_affect_refused_total", ("code", "INVALID_ARGUMENT"))
    assert seen.get(("ray_affect_turns_total", frozenset()), 0) >= 2, sorted(seen)
    assert seen.get(("ray_affect_batch_size_count", frozenset({("encoder", "text")})), 0) >= 2, sorted(seen)
    assert seen.get(("ray_affect_turn_latency_seconds_count", frozenset({("modalities", "text")})), 0) >= 2
    assert refused >= 1, sorted(seen)  # the turn refused above, by its status
    assert ("ray_affect_active_conversations", frozenset()) in seen


def _replicas_nice(deployment: str) -> list[list[int]]:
    """For each process running a replica of ``deployment`` (Ray titles it
    ``ray::ServeReplica:<app>:<deployment>``), the nice value of each of its threads."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().split(b"\0")[0].decode(errors="replace")
            if title.startswith("ray::ServeReplica:") and title.split(":")[-1].strip() == deployment:
                found.append([int(_stat(f"/proc/{pid}/task/{tid}/stat")[18]) for tid in os.listdir(f"/proc/{pid}/task")])
        except (OSError, ValueError):
            continue
    assert found, f"no replica process of {deployment}"
    return found


def _stat(path: str) -> list[str]:
    """A /proc stat line's fields after the command name (which may hold spaces), numbered as in proc(5)."""
    with open(path) as f:
        line = f.read()
    return ["", "", *line[line.rindex(")") + 2:].split()]


def _frame(width: int, height: int) -> bytes:
    import cv2
    import numpy as np

    picture = (np.random.default_rng(0).random((height, width)) * 255).astype(np.uint8)
    return cv2.imencode(".jpg", picture)[1].tobytes()


def test_a_heavy_turn_is_read_in_the_heavy_lane(ray_target):
    """A frame of more pixels than heavy_image_pixels goes to the face-encoder-heavy deployment,
    apart from the batches of ordinary turns, as the in-process server's heavy lane does."""
    with AffectClient(ray_target, token=TOKEN) as client, client.conversation() as conversation:
        light = conversation.send("Here I am.", image=Image.encoded(_frame(320, 240)))
        heavy = conversation.send("And now?", image=Image.encoded(_frame(640, 480)))
    assert light.turn_index == 0 and heavy.turn_index == 1
    for result in (light, heavy):  # noise: the face deployments looked and found no face; the text was read
        assert Modality.FACE in result.absent and Modality.TEXT in result.present
    key = ("ray_affect_batch_size_count", frozenset({("encoder", "face-heavy")}))
    seen = _scraped_once(lambda seen: seen.get(key, 0) >= 1 and _total(seen, "ray_affect_face_searches_total") >= 2)
    assert seen.get(key, 0) == 1, sorted(seen)  # the heavy frame alone
    assert seen.get(("ray_affect_batch_size_count", frozenset({("encoder", "face")})), 0) >= 1, sorted(seen)
    # the two face deployments' detectors: one full search per frame (each conversation's first), windows read
    assert _total(seen, "ray_affect_face_searches_total") >= 2, sorted(seen)
    assert seen.get(("ray_affect_face_detector_windows_total", frozenset()), 0) > 0, sorted(seen)
    # the heavy replica runs at the lowest CPU priority, every thread of it; the ordinary one does not
    assert [set(threads) for threads in _replicas_nice("face-encoder-heavy")] == [{19}]
    assert all(19 not in threads for threads in _replicas_nice("face-encoder"))
    # and the ingress replica that decoded the heavy frame did it on a thread of its own at 19
    assert any(19 in threads for threads in _replicas_nice("AffectIngress"))


def test_the_token_is_required(ray_target):
    with AffectClient(ray_target, max_retries=0) as client:
        with pytest.raises(UnauthenticatedError):
            client.list_models()
        with pytest.raises(UnauthenticatedError):
            with client.conversation() as conversation:
                conversation.send("hello")


def test_killing_a_replica_interrupts_only_its_conversations(ray_target):
    replicas = _ingress_replicas()
    assert len(replicas) == 2, replicas
    outcomes: dict[int, str] = {}
    killed = threading.Event()

    async def one(client: AsyncAffectClient, k: int) -> None:
        try:
            async with client.conversation() as conversation:
                for i in range(400):
                    await conversation.send(LINES[(k + i) % len(LINES)], speaker="caller")
                    if killed.is_set() and i % 5 == 4:
                        await asyncio.sleep(0.5)  # give the survivors' streams time after the kill
                    if killed.is_set() and time.monotonic() > stop_at:
                        break
                outcomes[k] = "completed"
        except UnavailableError:
            outcomes[k] = "unavailable"

    async def run() -> None:
        # resume_turns=0: the killed replica's conversations raise rather than resume on the survivor
        async with AsyncAffectClient(ray_target, max_retries=0, resume_turns=0, turn_timeout=60, token=TOKEN) as client:
            tasks = [asyncio.create_task(one(client, k)) for k in range(8)]
            await asyncio.sleep(4)
            victim = ray.get_actor(replicas[0], namespace="serve")
            ray.kill(victim, no_restart=True)
            killed.set()
            await asyncio.gather(*tasks)

    stop_at = time.monotonic() + 25
    asyncio.run(run())
    assert len(outcomes) == 8
    assert "unavailable" in outcomes.values(), outcomes
    assert "completed" in outcomes.values(), outcomes
    # a new conversation is served (by the survivor or the replacement Serve starts)
    with AffectClient(ray_target, max_retries=5, token=TOKEN) as client, client.conversation() as conversation:
        assert conversation.send(LINES[0]).turn_index == 0


def test_the_shipped_serve_config_reads_as_settings():
    """deploy/ray-serve.yaml's `ray` block is what RaySettings reads; `heavy: null` turns the
    heavy lane off, and a misspelt key is refused rather than ignored."""
    import yaml
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).parents[1] / "deploy" / "ray-serve.yaml").read_text())
    settings = RaySettings.from_dict(config["applications"][0]["args"]["ray"])
    assert settings.heavy is not None and settings.heavy.num_cpus == 0 and settings.speech.max_replicas == 16
    assert RaySettings.from_dict({"heavy": None}).heavy is None
    with pytest.raises(ValueError, match="heavy"):
        RaySettings.from_dict({"heavy": {"replica": 2}})


@pytest.mark.parametrize("content, said", [
    ('{"text": {"replica": 2}}', "unknown settings for text: ['replica']"),
    ('{"model_threads": -2}', "model_threads must be a whole number of at least 1, got -2"),
    ('{"speech": {"replicas": 0}}', "speech: replicas must be a whole number of at least 1, got 0"),
    ('{"face": {"num_cpus": "half"}}', "face: num_cpus must be a non-negative number, got 'half'"),
    ('{"ingress": 3}', "ingress must be an object of settings, got 3"),
    ('[1, 2]', "the file must hold a JSON object, got list"),
    ('{nope', "Expecting property name enclosed in double quotes"),
    (None, "No such file or directory"),
])
def test_a_bad_ray_config_is_one_line_before_ray_starts(tmp_path, content, said):
    """``--ray-config`` was read with a traceback for a missing file, bad JSON or a misspelt key,
    and a negative model_threads or a replica count of 0 passed to Serve, which failed minutes
    later once Ray had started; each is now one line naming the setting, exit 2, Ray never started."""
    import subprocess
    import sys

    path = tmp_path / "ray.json"
    if content is not None:
        path.write_text(content)
    done = subprocess.run([sys.executable, "-m", "affect_server.cli", "serve", "--ray", "--ray-config", str(path),
                           "--port", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"affect serve: --ray-config {path}: ") and said in line
    assert DeploymentScale(replicas=0, max_replicas=4).options()["autoscaling_config"]["min_replicas"] == 0  # a floor of 0 autoscales
