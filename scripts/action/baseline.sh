#!/usr/bin/env bash
# The GitHub Action's baseline (action.yml): prints the baseline path for scripts/action/lab.sh.
# A path is printed as given. `artifact:NAME` fetches the artifact NAME from the latest
# successful run of this workflow on the repository's default branch (the GitHub CLI, with
# GH_TOKEN) into RUNNER_TEMP and prints that directory; without such a run (the first one, or
# an artifact that expired) it warns and prints nothing: the lab runs without a baseline.
set -euo pipefail
baseline="${1:-}"
case "$baseline" in
  artifact:*) ;;
  *) printf '%s\n' "$baseline"; exit 0 ;;
esac
name="${baseline#artifact:}"
workflow="${GITHUB_WORKFLOW_REF%%@*}"
workflow="${workflow##*/}"
run_id="$(gh run list --repo "$GITHUB_REPOSITORY" --workflow "$workflow" \
  --branch "${DEFAULT_BRANCH:?DEFAULT_BRANCH}" --status success --limit 1 \
  --json databaseId --jq '.[0].databaseId // empty')"
if [ -z "$run_id" ]; then
  echo "::warning title=rsslab baseline::no successful run of $workflow on $DEFAULT_BRANCH yet: this lab runs without a baseline" >&2
  exit 0
fi
dir="$RUNNER_TEMP/rsslab-baseline-$run_id"
rm -rf "$dir"
if ! gh run download "$run_id" --repo "$GITHUB_REPOSITORY" --name "$name" --dir "$dir" >&2; then
  echo "::warning title=rsslab baseline::run $run_id has no artifact $name (expired, or another name): this lab runs without a baseline" >&2
  exit 0
fi
echo "rsslab: baseline from run $run_id, artifact $name" >&2
printf '%s\n' "$dir"
