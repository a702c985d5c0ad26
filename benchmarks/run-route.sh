#!/usr/bin/env bash
# run-route.sh: the one command behind "End to end: send → offer" in benchmarks/RESULTS.md. Starts a
# private redis-server and omni-broker with a routing config, runs bench_route (floor, then each
# rate on a fresh broker and Redis), prints RESULT lines, medians and the verdict against the target.
#
# It builds nothing. Build first, from the source root:
#   meson setup build-bench -Dbuildtype=release && ninja -C build-bench
# then run, from the source root:
#   benchmarks/run-route.sh                 # one run, about 70 s
#   RUNS=3 benchmarks/run-route.sh          # three runs, medians per cell
#
# Target (issue 3): p99 of SDK send -> agent receives the Offer at 10k msg/s within 2x the floor,
# the floor being two ZeroMQ hops plus one Redis round trip measured in the same run.
#
# Placement (the VM has 2 cores), as run-ingest.sh: the broker and redis-server share core 0
# (BROKER_CPU, REDIS_CPU); bench_route has core 1 (LOAD_CPU): the SDK's sender, the SDK's ZeroMQ
# I/O thread, the 20 agents' sockets and their I/O thread, in one spinning loop (a blocking poll
# would add a timer wake-up to every latency it measures; a spinning process next to Redis would
# steal its time). The floor's relay and Redis client run on core 0, its sender and receiver
# (two contexts, like the SDK and the agents) on core 1.
#
# Each rate runs against a fresh redis-server and omni-broker: an overloaded rate leaves a backlog
# (conversations waiting, agents' slots held) that must not be measured by the next one.
#
# Knobs (environment): BUILD, RUNS (1), RATES ("1000 10000 50000"), RATE_SECONDS (5), WARMUP (1),
# DRAIN (10: seconds after the last send to wait for offers), AGENTS (20), CAPACITY (1000 chat
# slots each), BROKER_CPU, REDIS_CPU, LOAD_CPU, KEEP_TMP=1 (keep logs), and for finding where the
# time goes (they perturb the run, do not use them for the numbers): SLOWLOG=1 (Redis logs every
# call; bench_route --slowlog sums Redis time per broker script after each rate), PERF=1
# (perf record -g of broker and redis-server during each rate; perf.data kept in the temp dir).
set -euo pipefail

BUILD=${BUILD:-build-bench}
RUNS=${RUNS:-1}
RATES=${RATES:-"1000 10000 50000"}
RATE_SECONDS=${RATE_SECONDS:-5}
WARMUP=${WARMUP:-1}
DRAIN=${DRAIN:-10}
AGENTS=${AGENTS:-20}
CAPACITY=${CAPACITY:-1000}
BROKER_CPU=${BROKER_CPU:-0}
REDIS_CPU=${REDIS_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SLOWLOG=${SLOWLOG:-0}
PERF=${PERF:-0}
TARGET=2          # p99 at 10k msg/s <= TARGET x the floor's p99
TARGET_RATE=10000

BENCH=$BUILD/benchmarks/bench_route
BROKER=$BUILD/broker/omni-broker
for f in "$BENCH" "$BROKER"; do
    if [[ ! -x $f ]]; then
        echo "run-route.sh: $f not found; build first: meson setup $BUILD -Dbuildtype=release && ninja -C $BUILD" >&2
        exit 1
    fi
done
for c in redis-server redis-cli taskset; do
    command -v "$c" >/dev/null || {
        echo "run-route.sh: needs redis-server, redis-cli and taskset (apt-get install redis-server util-linux)" >&2
        exit 1
    }
done
[[ $PERF = 1 ]] && ! command -v perf >/dev/null && { echo "run-route.sh: PERF=1 needs perf" >&2; exit 1; }

TMP=$(mktemp -d /tmp/omni-bench-route.XXXXXX)
REDIS_PID='' BROKER_PID='' BENCH_PID='' PERF_PID=''
stop_stack() {
    [[ -n $BROKER_PID ]] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
    [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    BROKER_PID='' REDIS_PID=''
}
cleanup() {
    set +e
    [[ -n $PERF_PID ]] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
    [[ -n $BENCH_PID ]] && kill "$BENCH_PID" 2>/dev/null && wait "$BENCH_PID" 2>/dev/null
    stop_stack
    if [[ ${KEEP_TMP:-0} = 1 || $PERF = 1 ]]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One queue for chat, nothing else routed; offers never time out by accident (20 s default), no
# agent is ever set away, and the router holds any backlog an overloaded rate builds.
cat >"$TMP/broker.yaml" <<'EOF'
routing:
  default_queue: bench
  agents:
    max_missed_offers: 0
    max_conversations: 2000000
  queues:
    - name: bench
      channels: chat
      strategy: longest_idle
EOF

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
HZ=$(getconf CLK_TCK)
SOCK='' D=''
rcli() { redis-cli -s "$SOCK" "$@"; }
evalsha() { rcli info commandstats | awk -F'[=,:]' '/^cmdstat_evalsha/{print $3, $5}'; }

# A fresh redis-server and omni-broker in $TMP/$1 (AOF as run-ingest.sh: everysec, no rewrite).
start_stack() {
    D=$TMP/$1
    mkdir -p "$D"
    SOCK=$D/redis.sock
    taskset -c "$REDIS_CPU" redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --dir "$D" \
        --appendonly yes --appendfsync everysec --save "" --auto-aof-rewrite-percentage 0 \
        --logfile "$D/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 100); do rcli ping >/dev/null 2>&1 && break; sleep 0.05; done
    rcli ping >/dev/null || { echo "run-route.sh: redis-server did not start (see $D/redis.log)" >&2; exit 1; }
    [[ $SLOWLOG = 1 ]] && rcli config set slowlog-log-slower-than 0 >/dev/null && rcli config set slowlog-max-len 1000000 >/dev/null
    taskset -c "$BROKER_CPU" "$BROKER" --config "$TMP/broker.yaml" --redis "unix://$SOCK" \
        --ingress "ipc://$D/ingress" --control "ipc://$D/control" --stream "ipc://$D/stream" \
        --agents "ipc://$D/agents" --http 127.0.0.1:0 --log-level warn >"$D/broker.log" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 100); do [[ -S $D/control ]] && break; sleep 0.05; done
    kill -0 "$BROKER_PID" 2>/dev/null || { echo "run-route.sh: omni-broker exited:" >&2; cat "$D/broker.log" >&2; exit 1; }
}

RESULTS=()

# One phase: run bench_route, then what the broker, Redis and everyone else used meanwhile.
phase() {
    local run=$1 name=$2; shift 2
    local b0 r0 m0 e0 eu0 t0 b1 r1 m1 e1 eu1 t1 out line status=0
    b0=$(ticks "$BROKER_PID"); r0=$(ticks "$REDIS_PID"); m0=$(busy); read -r e0 eu0 < <(evalsha) || true
    t0=$(date +%s.%N)
    if [[ $PERF = 1 && $name == rate* ]]; then
        perf record -q -g -p "$BROKER_PID,$REDIS_PID" -o "$D/perf.data" 2>/dev/null &
        PERF_PID=$!
    fi
    "$@" >"$D/phase.out" &
    BENCH_PID=$!
    wait "$BENCH_PID" || status=$?
    BENCH_PID=''
    if [[ -n $PERF_PID ]]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=''; fi
    out=$(cat "$D/phase.out")
    ((status == 0)) || echo "run-route.sh: $name: bench_route exited with status $status (2: not sustained, or requests refused)" >&2
    t1=$(date +%s.%N)
    b1=$(ticks "$BROKER_PID"); r1=$(ticks "$REDIS_PID"); m1=$(busy); read -r e1 eu1 < <(evalsha) || true
    echo "$out"
    line=$(grep '^RESULT ' <<<"$out" | tail -1)
    local lg=${line##*lg_cpu_s=}; lg=${lg%% *}; [[ $line == *lg_cpu_s=* ]] || lg=0
    local offers=${line##* offers=}; offers=${offers%% *}; [[ $line == *" offers="* ]] || offers=0
    awk -v b=$((b1 - b0)) -v r=$((r1 - r0)) -v m=$((m1 - m0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" -v lg="$lg" \
        -v calls=$((${e1:-0} - ${e0:-0})) -v usec=$((${eu1:-0} - ${eu0:-0})) -v name="$name" -v offers="$offers" 'BEGIN {
        w = t1 - t0; o = m / hz - b / hz - r / hz - lg; if (o < 0) o = 0
        note = ""; if (lg == 0) note = " (bench_route included)"
        printf "  cpu over %.1f s: broker %.0f%%, redis-server %.0f%%, load generator %.0f%%, everything else %.0f%%%s (of one core)\n",
            w, 100 * b / hz / w, 100 * r / hz / w, 100 * lg / w, 100 * o / w, note
        if (offers > 0) printf "  per offer: broker %.0f us CPU, redis-server %.0f us CPU\n", 1e6 * b / hz / offers, 1e6 * r / hz / offers
        # The floor runs its own XADD script: only rate phases run the broker scripts.
        if (calls > 0 && name != "floor") printf "  redis: %d EVALSHA calls (ingest.lua + route.lua), %.0f us each\n", calls, usec / calls
    }'
    if [[ $name == rate* ]]; then
        echo "  after: broker VmRSS $(awk '/^VmRSS/{print $2, $3}' "/proc/$BROKER_PID/status")," \
            "redis $(rcli info memory | awk -F: '/^used_memory_human/{print $2}' | tr -d '\r')," \
            "routing hash $(rcli hlen 'omni:{default}:routing') entries, stream $(rcli xlen 'omni:{default}:stream') events"
        [[ $SLOWLOG = 1 ]] && "$BENCH" --slowlog --redis "unix://$SOCK" | sed 's/^/  /'
    fi
    [[ -n $line ]] && RESULTS+=("run=$run $line broker_cpu_s=$(awk -v t=$((b1 - b0)) -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz}') redis_cpu_s=$(awk -v t=$((r1 - r0)) -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz}')")
    echo
}

get() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

echo "== omni end-to-end routing benchmark: SDK send -> agent receives the Offer =="
echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine:  $(nproc) cpus, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "commit:   $(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null || echo unknown) at run time;" \
    "omni-broker built $(date -u -r "$BROKER" '+%Y-%m-%d %H:%M:%S UTC'), bench_route $(date -u -r "$BENCH" '+%H:%M:%S')"
echo "redis:    $(redis-server --version | awk '{print $3}'), appendonly yes, appendfsync everysec, save \"\", no AOF rewrite, unix socket"
echo "place:    broker cpu $BROKER_CPU, redis cpu $REDIS_CPU, bench_route (SDK + $AGENTS agents) cpu $LOAD_CPU"
echo "traffic:  rates $RATES msg/s, $RATE_SECONDS s each after $WARMUP s warm-up, every message a new chat customer;" \
    "$AGENTS agents x $CAPACITY chat slots accept every offer and close on assignment"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min load average before the run)"
[[ $SLOWLOG = 1 || $PERF = 1 ]] && echo "NOTE:     SLOWLOG=$SLOWLOG PERF=$PERF: profiling run, the latencies are perturbed"
echo

for run in $(seq "$RUNS"); do
    echo "======== run $run of $RUNS ========"
    start_stack "run$run-floor"
    phase "$run" floor taskset -c "$LOAD_CPU" "$BENCH" --floor --redis "unix://$SOCK" --floor-in "ipc://$D/floor-in" \
        --floor-out "ipc://$D/floor-out" --server-cpu "$BROKER_CPU" --client-cpu "$LOAD_CPU"
    stop_stack
    for r in $RATES; do
        start_stack "run$run-rate$r"
        phase "$run" "rate $r" taskset -c "$LOAD_CPU" "$BENCH" --rate "$r" --seconds "$RATE_SECONDS" --warmup "$WARMUP" \
            --drain "$DRAIN" --n-agents "$AGENTS" --capacity "$CAPACITY" --broker "ipc://$D/ingress" \
            --agents "ipc://$D/agents" --control "ipc://$D/control"
        stop_stack
    done
done

echo "== RESULT lines =="
printf '%s\n' "${RESULTS[@]}"
echo

# Median of the numbers on stdin ("NA" when there are none).
median() { awk '$1 != "NA"' | sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "NA"; else if (NR % 2) printf "%.1f\n", a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
cell() { # cell PATTERN KEY: that key's values over the runs, one a line
    printf '%s\n' "${RESULTS[@]}" | grep -- "$1" | while read -r l; do get " $l" "$2"; done
}
row() { # row LABEL PATTERN PREFIX: the four percentiles' medians
    printf '%-28s %11s %11s %11s %11s\n' "$1" "$(cell "$2" "${3}p50_us" | median)" "$(cell "$2" "${3}p99_us" | median)" \
        "$(cell "$2" "${3}p999_us" | median)" "$(cell "$2" "${3}max_us" | median)"
}
echo "== medians over $RUNS run(s), latencies in us =="
printf '%-28s %11s %11s %11s %11s\n' "" p50 p99 p99.9 max
row "floor part: zmq 2 hops" mode=floor hops_
row "floor part: redis EVALSHA" mode=floor redis_
row "FLOOR: 2 hops + EVALSHA" mode=floor floor_
printf '%-28s %11s %11s %11s\n' "(sum of the parts)" "$(cell mode=floor sum_p50_us | median)" \
    "$(cell mode=floor sum_p99_us | median)" "$(cell mode=floor sum_p999_us | median)"
for r in $RATES; do
    pat="mode=rate rate=$r "
    n=$(cell "$pat" sustained | wc -l)
    sus=$(cell "$pat" sustained | grep -c yes || true)
    if ((sus * 2 > n)); then
        row "$r msg/s: send -> offer" "$pat" ""
        row "$r msg/s: send -> ack" "$pat" ack_
        echo "    sustained in $sus of $n run(s); offers/s $(cell "$pat" offered_per_s | median), backlog max $(cell "$pat" backlog_max | median)"
    else
        # Percentiles of a growing backlog say how long the run was, not how fast the path is.
        echo "$r msg/s: NOT SUSTAINED ($sus of $n runs sustained): the broker delivered $(cell "$pat" all_offers_per_s | median)" \
            "offers/s for $(cell "$pat" sent_per_s | median) msg/s sent; backlog $(cell "$pat" backlog_end | median) messages" \
            "at the last send, last offer $(cell "$pat" tail_ms | median) ms after it, $(cell "$pat" missing | median) never offered" \
            "within the ${DRAIN} s drain (medians). Its send->offer \"p99\" of $(cell "$pat" p99_us | median) us is the backlog's length."
    fi
done
echo

# The verdict of each run against its own floor, then the median ratio.
echo "== target: p99 at $TARGET_RATE msg/s <= ${TARGET}x the floor's p99 (same run) =="
ratios=()
for run in $(seq "$RUNS"); do
    f=$(printf '%s\n' "${RESULTS[@]}" | grep "^run=$run RESULT mode=floor" || true)
    x=$(printf '%s\n' "${RESULTS[@]}" | grep "^run=$run RESULT mode=rate rate=$TARGET_RATE " || true)
    [[ -z $f || -z $x ]] && { echo "run $run: no floor or no $TARGET_RATE msg/s result"; continue; }
    if [[ $(get "$x" p99_us) = NA ]]; then
        echo "run $run: NOT MET -- not one offer for a message of the measured window within the drain"
        continue
    fi
    ratios+=("$(awk -v p="$(get "$x" p99_us)" -v f="$(get "$f" floor_p99_us)" 'BEGIN{printf "%.2f", p / f}')")
    awk -v p99="$(get "$x" p99_us)" -v p50="$(get "$x" p50_us)" -v f99="$(get "$f" floor_p99_us)" \
        -v f50="$(get "$f" floor_p50_us)" -v s="$(get "$x" sustained)" -v o="$(get "$x" all_offers_per_s)" \
        -v m="$(get "$x" missing)" -v t="$TARGET" -v run="$run" -v rate="$TARGET_RATE" 'BEGIN {
        v = "NOT MET"; if (s == "yes" && p99 <= t * f99) v = "MET"
        printf "run %s: p99 %.1f us vs floor p99 %.1f us = %.2fx (p50 %.1f vs %.1f = %.2fx): %s", run, p99, f99, p99 / f99, p50, f50, p50 / f50, v
        if (s != "yes") printf "\n       NOT SUSTAINED: the broker delivered %.0f offers/s for %d msg/s (%.1fx short), %d never offered; that p99 is the backlog", o, rate, rate / o, m
        printf "\n" }'
done
if ((${#ratios[@]})); then
    med=$(printf '%s\n' "${ratios[@]}" | median)
    sus=$(cell "mode=rate rate=$TARGET_RATE " sustained | grep -c yes || true)
    awk -v r="$med" -v t="$TARGET" -v sus="$sus" -v n="$RUNS" 'BEGIN {
        v = "NOT MET"; if (r <= t && sus * 2 > n) v = "MET"
        printf "median ratio over %d run(s): %.2fx the floor (target <= %sx), sustained in %d of %d: %s\n", n, r, t, sus, n, v }'
fi
