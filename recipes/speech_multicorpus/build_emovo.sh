#!/usr/bin/env bash
# EMOVO (Italian acted speech: 6 actors, 7 emotions, 14 sentences each; Costantini et al., LREC 2014)
# into DEST/emovo/<actor>/<emotion>-<actor>-<sentence>.wav, from the one public GitHub snapshot found with
# its audio as real files (not LFS pointers): fp1acm8/SER, folder data/EMOVO (588 clips, 48 kHz stereo).
#
#   recipes/speech_multicorpus/build_emovo.sh SNAPSHOTS DEST     # as ../shared/data/build_datasets.sh
#
# Fetch the snapshot first (the search tool's `fetch github:fp1acm8/SER`). The corpus is distributed
# by Fondazione Ugo Bordoni for research; the snapshot states no licence for it: research use only.
# Data, not code: it stays out of every commit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../snapshot.sh"
snapshot_build_args "$@"
g=$(snapshot_git "$snap" fp1acm8+SER)
mkdir -p "$dest/emovo"
git --git-dir="$g" archive HEAD data/EMOVO | tar -x -C "$dest/emovo" --strip-components=2
printf 'emovo %d clips, %.1f MB\n' "$(find "$dest/emovo" -name '*.wav' | wc -l)" "$(du -sb "$dest/emovo" | awk '{print $1/1e6}')"
