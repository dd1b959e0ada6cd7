#!/usr/bin/env bash
# The GitHub Action's lab (action.yml): runs `rsslab run` on the caller's scenarios, compares
# with a baseline when one is given, and says what happened in the step's outputs and the job
# summary. Runs wherever the lab runs (in the action's Debian container, or on the runner with
# `container: none`); runner/tests/action.rs runs it against real VMs.
#
# Inputs (environment): RSSLAB_BIN_DIR (holds `rsslab`), INPUT_SCENARIOS (paths, split at white
# space), INPUT_KERNELS (split at white space or commas; empty: each scenario's own),
# INPUT_ARGS (more `rsslab run` arguments, shell-quoted), INPUT_BASELINE (a lab directory, a
# report's index.html or a results.json beside its runs/; empty: none), INPUT_OUT (the output
# directory). GITHUB_OUTPUT and GITHUB_STEP_SUMMARY as GitHub sets them (unset: not written).
#
# Outputs: report-dir, report, verdict (pass, expectation-failed, regression, bad-input or
# infra-error), exit-code, failed-expectations, regressions. Exits with rsslab's exit code.
set -euo pipefail

rsslab="${RSSLAB_BIN_DIR:?RSSLAB_BIN_DIR: the directory that holds rsslab}/rsslab"
out="${INPUT_OUT:?INPUT_OUT: the output directory of the lab}"
output_file="${GITHUB_OUTPUT:-/dev/null}"
summary_file="${GITHUB_STEP_SUMMARY:-/dev/null}"

# Shell words of INPUT_ARGS, quotes honoured, nothing evaluated.
extra=()
if [ -n "${INPUT_ARGS:-}" ]; then
  mapfile -d '' extra < <(printf '%s' "$INPUT_ARGS" | xargs printf '%s\0')
fi
read -ra scenarios <<<"${INPUT_SCENARIOS:-scenarios}"
kernel_args=()
kernels="${INPUT_KERNELS:-}"
for kernel in ${kernels//,/ }; do
  kernel_args+=(--kernel "$kernel")
done

# A baseline is the raw records of an earlier lab: its directory, or the report that embeds
# them (the artifact this action uploads), unpacked next to the new lab.
baseline_args=()
baseline="${INPUT_BASELINE:-}"
if [ -n "$baseline" ]; then
  case "$baseline" in
    */results.json | results.json) baseline="$(dirname "$baseline")" ;;
  esac
  if [ -d "$baseline" ] && [ ! -d "$baseline/runs" ] && [ -f "$baseline/index.html" ]; then
    baseline="$baseline/index.html"
  fi
  if [ -f "$baseline" ]; then
    unpacked="$out-baseline"
    rm -rf "$unpacked"
    "$rsslab" unpack "$baseline" --out "$unpacked"
    baseline="$unpacked"
  fi
  baseline_args=(--baseline "$baseline")
fi

mkdir -p "$(dirname "$out")"
log="$(mktemp)"
# stderr (progress, errors) goes to the log as it comes and into a copy for the summary.
exec 3>&1
set +e
"$rsslab" run "${scenarios[@]}" "${kernel_args[@]}" --out "$out" "${baseline_args[@]}" "${extra[@]}" 2>&1 >&3 | tee "$log" >&2
code="${PIPESTATUS[0]}"
set -e

# Counts from the lab's own files: failed expectations in results.json, regressions in
# comparison.json (written only with a baseline).
counts="$(python3 "$(dirname "$0")/counts.py" "$out")"
read -r failed regressions <<<"$counts"

case "$code" in
  0) verdict=pass ;;
  1) if [ "$regressions" -gt 0 ]; then verdict=regression; else verdict=expectation-failed; fi ;;
  2) verdict=bad-input ;;
  *) verdict=infra-error ;;
esac

report_dir="$(cd "$out" 2>/dev/null && pwd || echo "$out")"
{
  echo "report-dir=$report_dir"
  echo "report=$report_dir/index.html"
  echo "verdict=$verdict"
  echo "exit-code=$code"
  echo "failed-expectations=$failed"
  echo "regressions=$regressions"
} >>"$output_file"

# The job summary: the lab's summary.md; without one (bad input, a lab that never started),
# the end of what rsslab said.
if [ -f "$out/summary.md" ]; then
  cat "$out/summary.md" >>"$summary_file"
else
  {
    echo "### rsslab: $verdict (exit $code)"
    echo
    echo '```'
    tail -n 40 "$log"
    echo '```'
  } >>"$summary_file"
fi
rm -f "$log"
echo "rsslab: verdict $verdict (exit $code), $failed failed expectation(s), $regressions regression(s); report $report_dir/index.html" >&2
exit "$code"
