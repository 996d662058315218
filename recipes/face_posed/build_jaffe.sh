#!/usr/bin/env bash
# JAFFE (Lyons et al., 1998: 10 Japanese women, 213 posed faces, six basic expressions and neutral, 256x256 gray
# TIFF) into DEST/jaffe/<subject>.<expression><n>.<serial>.tiff, from the one public GitHub snapshot found with its
# images as real files: fitoplankton/facial-expression-classification-prediction, folder jaffe_db.
#
#   recipes/face_posed/build_jaffe.sh SNAPSHOTS DEST     # as ../shared/data/build_datasets.sh
#
# Fetch the snapshot first (the search tool's `fetch github:fitoplankton/facial-expression-classification-prediction`).
# JAFFE's terms: non-commercial scientific research only; the snapshot states no licence. Read by the recipe
# to choose between candidates, never trained on. Data, not code: it stays out of every commit.
# git prints "invalid object" for the snapshot's large files left out of it (outside this folder): harmless.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../snapshot.sh"
snapshot_build_args "$@"
g=$(snapshot_git "$snap" fitoplankton+facial-expression-classification-prediction)
mkdir -p "$dest/jaffe"
git --git-dir="$g" archive HEAD jaffe_db | tar -x -C "$dest/jaffe" --strip-components=1 --wildcards '*.tiff'
printf 'jaffe %d faces, %.1f MB\n' "$(find "$dest/jaffe" -name '*.tiff' | wc -l)" "$(du -sb "$dest/jaffe" | awk '{print $1/1e6}')"
