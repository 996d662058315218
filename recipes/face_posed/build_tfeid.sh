#!/usr/bin/env bash
# The Taiwanese facial expression database (Chen et al., Chinese Journal of Psychology 55(4), 2013: 29 performers,
# front view, seven posed expressions, 256x256 colour) into DEST/tfeid/<file>.jpg with its Readme and rating sheet,
# from the one public GitHub snapshot found with its images as real files: lai-wei-cheng/b12207073, folder Taiwanese.
#
#   recipes/face_posed/build_tfeid.sh SNAPSHOTS DEST     # as ../shared/data/build_datasets.sh
#
# Fetch the snapshot first (the search tool's `fetch github:lai-wei-cheng/b12207073`). The database is released
# by its authors on application for research; the snapshot states no licence: research use only.
# Data, not code: it stays out of every commit.
# git prints "invalid object" for the snapshot's large files left out of it (outside this folder): harmless.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../snapshot.sh"
snapshot_build_args "$@"
g=$(snapshot_git "$snap" lai-wei-cheng+b12207073)
mkdir -p "$dest/tfeid"
git --git-dir="$g" archive HEAD Taiwanese/faces_256x256 Taiwanese/Readme.txt Taiwanese/Image_info.xls \
    | tar -x -C "$dest/tfeid" --strip-components=1
printf 'tfeid %d faces, %.1f MB\n' "$(find "$dest/tfeid" -name '*.jpg' | wc -l)" "$(du -sb "$dest/tfeid" | awk '{print $1/1e6}')"
