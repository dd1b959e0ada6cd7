# rsslab: `just lab` runs the default lab end to end, `just test` runs the tests.
# Both install what they need first (QEMU 10 from Debian, the Rust guest binaries).

set shell := ["bash", "-euo", "pipefail", "-c"]

guest_target := "x86_64-unknown-linux-gnu"
rsslab := "target/release/rsslab"

# Run the default lab (every scenario in scenarios/ on every kernel) and write reports/<id>/index.html.
lab *ARGS: deps build
    {{rsslab}} run scenarios {{ARGS}}

# Run every test: unit, CLI, browser (headless Chromium) and real-VM tests (serial, under TCG when KVM does not work).
# Tests named *_as_root need root: for other users they are left out (nextest reports them skipped).
test: deps test-deps guest
    cargo nextest run --workspace --no-fail-fast $([ "$(id -u)" = 0 ] || echo '-E !test(/_as_root$/)')

# Install host packages: QEMU 10+ (backports on bookworm) and e2fsprogs. Needs root or sudo.
deps:
    scripts/install-host-deps.sh

# Install what the tests need beyond the host deps: Debian's Chromium for the report's browser test. Needs root or sudo.
test-deps:
    scripts/install-test-deps.sh

# Time the report of a 500-run lab of fake runs (release build); prints the figures.
bench-report RUNS="500":
    cargo bench -p rsslab --bench report -- {{RUNS}}

# Build the static guest agent and workloads that go into every initramfs.
guest:
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --profile guest --target {{guest_target}} -p rsslab-agent

# Build the runner (and the guest binaries).
build: guest
    cargo build --release -p rsslab

# Validate scenarios without running them.
check *PATHS: build
    {{rsslab}} check {{PATHS}}

# Fetch and verify kernels and build guest images, no run.
images *ARGS: build
    {{rsslab}} images {{ARGS}}

# Rebuild a lab's outputs (index.html, results.json, junit.xml, summary.md) from its raw records.
report DIR: build
    {{rsslab}} report {{DIR}}

# Join the raw records of shards' output directories and write every output: just merge A B --out DIR
merge *ARGS: build
    {{rsslab}} merge {{ARGS}}

# Capture the kernel files the agent's parsers read (pressure, vmstat, cgroup v1/v2) from each
# catalogue kernel into vm-images/agent/tests/kernel-files/ (fixtures of its kernel_files test).
capture-kernel-files: build
    #!/usr/bin/env bash
    set -euo pipefail
    here=vm-images/agent/tests/kernel-files
    for version in 1 2; do
        out="$(mktemp -d)"
        {{rsslab}} run "$here/capture-v$version.toml" --out "$out"
        for dump in "$out"/runs/capture-kernel-files-v$version/*/dump.stdout; do
            kernel="$(basename "$(dirname "$dump")")"
            cp "$dump" "$here/$kernel-cgroup-v$version.txt"
            echo "captured $here/$kernel-cgroup-v$version.txt"
        done
    done

# Write the man pages (one per command) into target/man: man -l target/man/rsslab.1
man: build
    {{rsslab}} man --out target/man

# What this host has and lacks.
doctor: build
    {{rsslab}} doctor

# The lab's own speed: boot overhead against a bare boot per kernel, the guest sampler's CPU
# cost, a small lab with --jobs 1 and 2, rendering a 500-run report, then the whole default lab
# (bench-lab). Prints tables.
bench: deps guest
    cargo bench -p rsslab --bench lab
    cargo bench -p rsslab --bench report -- 500
    cargo bench -p rsslab --bench default_lab

# Run the default lab and print its speed: wall time, VM-seconds, host CPU, runs per minute,
# boot to first sample per kernel, the share of sampling after each story's last event.
# With DIR: the same figures (without wall time and CPU) of a lab that already ran.
bench-lab *ARGS: deps guest
    cargo bench -p rsslab --bench default_lab -- {{ARGS}}

# Fuzz one target for SECONDS: scenario_text, scenario_mutated or channel (README, "Fuzzing").
fuzz TARGET="scenario_mutated" SECONDS="600":
    mkdir -p fuzz/corpus/{{TARGET}}
    RUSTC_BOOTSTRAP=1 cargo fuzz run --features libfuzzer {{TARGET}} fuzz/corpus/{{TARGET}} {{ if TARGET == "scenario_text" { "scenarios runner/tests/fixtures" } else { "" } }} -- -max_total_time={{SECONDS}} -timeout=10 -len_control=0

# Mutation testing (cargo-mutants) of the code every verdict rests on, with the fast tests (no
# VMs): the agent's sampler, its parsers of kernel files, its kernel-log reader and its outcome
# mapping; the runner's expectation evaluator, counter arithmetic and record collector.
# Survivors: mutants.out/{agent,outcome,runner}/missed.txt (README, "Mutation testing").
mutants:
    command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants --version 27.1.0
    cargo mutants --package rsslab-agent --file vm-images/agent/src/sampler.rs --file vm-images/agent/src/parse.rs --file vm-images/agent/src/account.rs --file vm-images/agent/src/kmsg.rs --test-tool nextest -o mutants.out/agent || true
    cargo mutants --package rsslab-agent --file vm-images/agent/src/procs.rs --re ' in outcome$|replace outcome ' --test-tool nextest -o mutants.out/outcome || true
    cargo mutants --package rsslab --file runner/src/analysis/expectations.rs --file runner/src/analysis/account.rs --file runner/src/records/collect.rs --test-tool nextest -o mutants.out/runner -- --lib || true
    cat mutants.out/*/mutants.out/missed.txt

# Formatting and lints, as CI wants them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
