# Sourced by the corpus build scripts (recipes/*/build_*.sh): where a snapshot that the search tool's
# `fetch github:OWNER/NAME` brought keeps its git directory.
#
#   g=$(snapshot_git "$SNAPSHOTS" OWNER+NAME)     # exits the script with one line when it is missing

snapshot_git() {
  local g="$1/$2/repo"
  [[ -d $g/.git ]] && g=$g/.git
  [[ -d $g ]] || { echo "missing snapshot: ${2/+//} (fetch it first)" >&2; return 1; }
  echo "$g"
}
