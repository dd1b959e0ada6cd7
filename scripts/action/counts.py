"""Prints `FAILED REGRESSIONS` of a lab's output directory: expectations that failed in
results.json and changes judged regressions in comparison.json (0 when a file is missing)."""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])


def load(name, empty):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return empty


results = load("results.json", {"runs": []})
failed = sum(
    1 for run in results["runs"] for e in run.get("expectations", []) if not e["passed"]
)
comparison = load("comparison.json", {"changes": []})
regressions = sum(1 for c in comparison["changes"] if c["verdict"] == "regression")
print(failed, regressions)
