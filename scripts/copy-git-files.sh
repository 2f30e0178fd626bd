#!/usr/bin/env bash
# Copies the files git knows (tracked, or untracked and not ignored) into DEST,
# keeping their paths. A tracked file deleted in the working tree is skipped,
# and named; any other file that cannot be copied fails the copy.
#
# Usage: copy-git-files.sh DEST   (run from the repository's root)
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
dest=$1
git rev-parse --is-inside-work-tree >/dev/null
mkdir -p -- "$dest"

declare -A deleted=()
while IFS= read -r -d '' path; do
  deleted[$path]=1
done < <(git ls-files -z --deleted)

files=()
while IFS= read -r -d '' path; do
  if [[ -n ${deleted[$path]:-} ]]; then
    echo "copy-git-files: skipping $path (deleted in the working tree)" >&2
  else
    files+=("$path")
  fi
done < <(git ls-files -z --cached --others --exclude-standard)

if [[ ${#files[@]} -gt 0 ]]; then
  printf '%s\0' "${files[@]}" | xargs -0 cp --parents --no-dereference -t "$dest" --
fi
