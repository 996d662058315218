#!/usr/bin/env bash
# DailyDialog's validation and test splits (Li et al., IJCNLP 2017: two-person everyday dialogues, each
# utterance labelled with one of Ekman's six emotions or "no emotion") into DEST/dailydialog/<split>/, from
# the public GitHub snapshot bothe/politeEDAs, folder ijcnlp_dailydialog (the official release's files).
#
#   recipes/text_multicorpus/build_dailydialog.sh SNAPSHOTS DEST     # as ../shared/data/build_datasets.sh
#
# Fetch the snapshot first (the search tool's `fetch github:bothe/politeEDAs`). Only validation and test are
# taken: no model here trains on DailyDialog; it is read as dialogue none of them saw
# (`python -m benchmarks.accuracy text --everyday-dialogue --full-data DEST`). DailyDialog's authors
# release it under CC BY-NC-SA 4.0 (the snapshot states no licence of its own): non-commercial use.
# Data, not code: it stays out of every commit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../snapshot.sh"
snapshot_build_args "$@"
g=$(snapshot_git "$snap" bothe+politeEDAs)
for split in validation test; do
  mkdir -p "$dest/dailydialog/$split"
  for kind in dialogues dialogues_emotion; do
    git --git-dir="$g" show "HEAD:ijcnlp_dailydialog/$split/${kind}_$split.txt" > "$dest/dailydialog/$split/${kind}_$split.txt"
  done
  printf 'dailydialog %s: %d dialogues, %d utterances\n' "$split" \
    "$(wc -l < "$dest/dailydialog/$split/dialogues_$split.txt")" \
    "$(grep -o '__eou__' "$dest/dailydialog/$split/dialogues_$split.txt" | wc -l)"
done
