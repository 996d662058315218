"""A folder (or glob) of files analysed in one go: images, audio clips and conversation files.

Each image or audio file is one turn on its own; each conversation file is a conversation
(see ``affect.turns_file``). Other files in a folder or glob are skipped and counted
(``FoundInputs.skipped``, which the command line reports in one line), and so are the results
that affect wrote (``FoundInputs.results``, told by ``affect.results_files``: ``--out`` written into
the folder it reads is not read back as a conversation on the next run). A file that cannot be
read is reported in its own record and the others go on. Records are ``{"file": ..., **TurnResult.to_dict()}`` or ``{"file": ...,
"error": ...}``; ``affect.export`` turns them into CSV rows, JSON Lines or a DataFrame.
"""

from __future__ import annotations

import glob
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affect._errors import AffectError, InvalidInputError

if TYPE_CHECKING:
    from affect.analyzer import Analyzer
    from affect.results import TurnResult

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
CONVERSATION_SUFFIXES = (".json", ".jsonl", ".ndjson")
RESULT_SUFFIXES = (*CONVERSATION_SUFFIXES, ".csv")  # what affect's results may be written as (--out, --json >)
MAX_FILES = 100_000
ACCEPTED_KINDS = (f"images ({', '.join(IMAGE_SUFFIXES)}), audio ({', '.join(AUDIO_SUFFIXES)}) and conversation files "
                  f"({', '.join(CONVERSATION_SUFFIXES)})")


@dataclass(frozen=True)
class InputFile:
    path: Path
    kind: str  # "image", "audio" or "conversation"


@dataclass(frozen=True)
class FoundInputs:
    """What ``find_inputs`` found: the files to analyse, in order, and the files of other kinds
    that its folders and globs held (skipped)."""

    files: list[InputFile]
    skipped: list[Path] = field(default_factory=list)
    results: list[Path] = field(default_factory=list)  # affect's own results (``affect.results_files``)

    def skipped_line(self, most_kinds: int = 6, most_results: int = 3) -> str:
        """The skipped files in one line, by kind: ``3 files skipped (2 .mp3, 1 .gif): only images
        (...), audio (...) and conversation files (...) are analysed``, then ``1 file skipped as
        results that affect wrote (calls/results.jsonl), not input``; "" when none was."""
        said = []
        if self.skipped:
            counted = Counter(p.suffix.lower() or "without a suffix" for p in self.skipped)
            kinds = sorted(counted.items(), key=lambda kind: (-kind[1], kind[0]))  # the most first, then by name
            shown = [f"{count} {kind}" for kind, count in kinds[:most_kinds]]
            if len(kinds) > most_kinds:
                shown.append(f"{len(kinds) - most_kinds} more kinds")
            said.append(f"{_files(len(self.skipped))} skipped ({', '.join(shown)}): only {ACCEPTED_KINDS} are analysed")
        if self.results:
            named = [str(p) for p in self.results[:most_results]]
            if len(self.results) > most_results:
                named.append(f"{len(self.results) - most_results:,} more")
            said.append(f"{_files(len(self.results))} skipped as results that affect wrote ({', '.join(named)}), "
                        f"not input")
        return "; ".join(said)


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count:,} files"


def kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in CONVERSATION_SUFFIXES:
        return "conversation"
    return None


def find_inputs(patterns: Sequence[str]) -> FoundInputs:
    """The files named by folders (searched recursively), glob patterns and file names, in
    sorted order without repeats; other files in a folder or glob are skipped (and listed), a
    named file of an unknown kind is refused."""
    from affect.results_files import is_results_file

    found: dict[Path, InputFile] = {}
    skipped: dict[Path, None] = {}
    results: dict[Path, None] = {}
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            if kind_of(path) is None and not (path.suffix.lower() == ".csv" and is_results_file(path)):
                raise InvalidInputError(f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}), audio file "
                                        f"({', '.join(AUDIO_SUFFIXES)}) or conversation ({', '.join(CONVERSATION_SUFFIXES)})",
                                        field="inputs")
            candidates = [path]
        elif glob.has_magic(pattern):
            candidates = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        else:
            raise InvalidInputError(f"{pattern}: no such file or directory", field="inputs")
        for candidate in candidates:
            kind = kind_of(candidate)
            if kind in ("conversation", None) and candidate.suffix.lower() in RESULT_SUFFIXES and \
                    is_results_file(candidate):
                results[candidate] = None
            elif kind is not None:
                found.setdefault(candidate, InputFile(candidate, kind))
            else:
                skipped[candidate] = None
        if len(found) > MAX_FILES:
            raise InvalidInputError(f"more than {MAX_FILES:,} files; analyse them in parts", field="inputs")
    result = FoundInputs(list(found.values()), list(skipped), list(results))
    if not found:
        also = f"; {result.skipped_line()}" if skipped or results else ""
        raise InvalidInputError(f"no image, audio or conversation files in {' '.join(patterns)}{also}", field="inputs")
    return result


def kinds_needed(inputs: Sequence[InputFile]) -> set[str]:
    """Which encoders the files need: "text", "speech", "face" (a conversation file is read to know)."""
    from affect.turns_file import read_conversation

    needs: set[str] = set()
    for item in inputs:
        if item.kind == "image":
            needs.add("face")
        elif item.kind == "audio":
            needs.add("speech")
        else:
            try:
                turns = read_conversation(item.path)
            except AffectError:
                continue  # reported as that file's error when it is analysed
            needs |= turn_modalities(turns)
    return needs


def turn_modalities(turns: Sequence[dict[str, Any]]) -> set[str]:
    needs: set[str] = set()
    for t in turns:
        needs |= {m for key, m in (("text", "text"), ("audio", "speech"), ("image", "face"), ("images", "face"))
                  if t.get(key)}
    return needs


def analyze_inputs(analyzer: "Analyzer", inputs: Sequence[InputFile], *, progress: bool,
                   event_speakers: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """One record per turn (per file for images and audio), in file order, with a progress bar
    on standard error when ``progress``. ``event_speakers``: the speakers whose events are raised
    in each conversation (``Analyzer.conversation``; empty: everyone's), checked before any file
    is read; an image or a clip on its own has no speaker, so none of its events is raised then."""
    from tqdm import tqdm

    from affect.limits import check_event_speakers

    watched = check_event_speakers(event_speakers)
    with tqdm(total=len(inputs), unit="file", disable=not progress, dynamic_ncols=True, leave=False) as bar:
        for item in inputs:
            bar.set_postfix_str(item.path.name[-40:], refresh=False)
            try:
                results = _analyze_one(analyzer, item, watched)
            except AffectError as exc:
                yield {"file": str(item.path), "error": str(exc)}
            else:
                for result in results:
                    yield {"file": str(item.path), **result.to_dict()}
            bar.update(1)


def _analyze_one(analyzer: "Analyzer", item: InputFile, event_speakers: tuple[str, ...]) -> list["TurnResult"]:
    from affect.conversation import Turn
    from affect.turns_file import play, read_conversation

    if item.kind == "image":
        return analyzer.analyze_conversation([Turn(image=str(item.path))], event_speakers=event_speakers)
    if item.kind == "audio":
        return analyzer.analyze_conversation([Turn(audio=str(item.path))], event_speakers=event_speakers)
    items = read_conversation(item.path)
    with analyzer.conversation(event_speakers=event_speakers) as conversation:
        return list(play(conversation, items))
