#!/bin/sh
# Runs one Criterion binary and prints its TAP report on stdout for meson (Criterion writes
# TAP only to a file or stderr); Criterion's own progress goes to stderr.
bin="$1"; shift
tap=$(mktemp "${TMPDIR:-/tmp}/omni-tap.XXXXXX") || exit 1
"$bin" --tap="$tap" "$@" >&2
rc=$?
cat "$tap"
rm -f "$tap"
exit $rc
