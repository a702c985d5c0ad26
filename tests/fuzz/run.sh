#!/bin/sh
# Runs one libFuzzer target for a bounded time and reports it as a single TAP test, so the
# fuzz stage counts in `./omni test` like any other suite. Crashes leave their input in $ARTIFACTS.
bin="$1"; seconds="$2"; name=$(basename "$bin")
work=$(mktemp -d "${TMPDIR:-/tmp}/omni-fuzz.XXXXXX") || exit 1
echo "1..1"
if "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -artifact_prefix="$work/" "$work" >"$work/log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$work/log" | tail -1)
    echo "ok 1 - $name ($runs in ${seconds}s)"
    rm -rf "$work"
else
    echo "not ok 1 - $name (crash input and log kept in $work)"
    tail -40 "$work/log" | sed 's/^/# /'
    exit 1
fi
