# Sourced by the corpus build scripts (recipes/*/build_*.sh): where a snapshot that the search tool's
# `fetch github:OWNER/NAME` brought keeps its git directory.
#
#   snapshot_build_args "$@"                      # sets snap and dest from SNAPSHOTS DEST, or prints the usage
#   g=$(snapshot_git "$snap" OWNER+NAME)          # exits the script with one line when it is missing

snapshot_git() {
  local g="$1/$2/repo"
  [[ -d $g/.git ]] && g=$g/.git
  [[ -d $g ]] || { echo "missing snapshot: ${2/+//} (fetch it first)" >&2; return 1; }
  echo "$g"
}

snapshot_build_args() {
  local usage="usage: $(basename "$0") SNAPSHOTS DEST"
  snap=${1:?$usage}
  dest=${2:?$usage}
}
