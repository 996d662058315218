#!/usr/bin/env bash
# TESS (Toronto emotional speech set; Dupuis and Pichora-Fuller, 2010: two female English speakers, OAF aged 64 and
# YAF aged 26, 200 words each in the carrier phrase "Say the word ...", seven emotions; 2,800 clips) into
# DEST/tess/<SPEAKER>_<emotion>/*.wav, from the public GitHub snapshot NidupDorji/SpeechEmotionRecognitionSystemUsingPython,
# folder TESS_Toronto_emotional_speech_set_data (a complete copy with real audio).
#
#   recipes/speech_multicorpus/build_tess.sh SNAPSHOTS DEST     # as ../shared/data/build_datasets.sh
#
# Fetch the snapshot first (the search tool's `fetch github:NidupDorji/SpeechEmotionRecognitionSystemUsingPython`).
# No model here trains on TESS: it is read as voices none of them heard
# (`python -m benchmarks.accuracy speech --unheard-voices --full-data DEST`). TESS is released under CC BY-NC-ND 4.0
# (the snapshot states no licence of its own): non-commercial use, no derivatives.
# Data, not code: it stays out of every commit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../snapshot.sh"
snapshot_build_args "$@"
g=$(snapshot_git "$snap" NidupDorji+SpeechEmotionRecognitionSystemUsingPython)
mkdir -p "$dest/tess"
git --git-dir="$g" archive HEAD TESS_Toronto_emotional_speech_set_data | tar -x -C "$dest/tess" --strip-components=1
printf 'tess %d clips, %.1f MB\n' "$(find "$dest/tess" -name '*.wav' | wc -l)" "$(du -sb "$dest/tess" | awk '{print $1/1e6}')"
