"""DailyDialog-shaped files for the reader's and the benchmark's tests."""

from __future__ import annotations

from pathlib import Path

# A few dialogues in DailyDialog's release format (written here, not taken from the corpus): tokens
# spaced apart, utterances ended by __eou__, one line of emotion codes per dialogue.
DAILYDIALOG_SAMPLE = [
    ("Good morning , did you sleep well ? __eou__ Yes , thanks . I ’ m so happy the exams are over ! __eou__", "0 4"),
    ("Where did you put my keys ? __eou__ I have no idea . __eou__ You always lose everything , I am furious ! __eou__", "0 0 1"),
    ("My grandmother passed away last night . __eou__ Oh no , I am so sorry to hear that . __eou__", "5 5"),
    ("Look , a huge spider on the wall ! __eou__ Wow , I did not expect that at all ! __eou__", "3 6"),
    ("This soup smells rotten , it is disgusting . __eou__ Let ' s order a pizza then . __eou__", "2 0"),
]


def write_dailydialog(root: Path, split: str = "test", sample: list[tuple[str, str]] = DAILYDIALOG_SAMPLE) -> None:
    folder = root / "dailydialog" / split
    folder.mkdir(parents=True)
    (folder / f"dialogues_{split}.txt").write_text("".join(text + "\n" for text, _ in sample), encoding="utf-8")
    (folder / f"dialogues_emotion_{split}.txt").write_text("".join(codes + " \n" for _, codes in sample), encoding="utf-8")
