#!/usr/bin/env bash
# Switchboard beside Kamailio 5.6, driven by the same sb-loadgen with the same
# rates and durations (issue #15). Prints one table and the ratios.
#
#   crates/loadgen/bench/run.sh [--rate 10000] [--duration 10s] [--calls-rate 1000]
#                               [--postgres postgres://USER@HOST:PORT] [--backends sqlite,postgres]
#                               [--users N]
#                               [--kamailio-children 8] [--out DIR] [--no-build | --bin-dir DIR]
#
# Everything listens on 127.0.0.1; every process started here is stopped on
# exit (including Ctrl-C). Exit status 0 when every run completed with 0 failed.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

RATE=10000          # registrations started per second
DURATION=10s        # sending window of every run
CALLS_RATE=1000     # calls started per second (hold 0)
PG=""               # Postgres cluster URL: a fresh database is created (and dropped) in it
BACKENDS=""         # Switchboard directories to measure: sqlite, postgres or both
USERS=""            # registration users (default: max(1000, rate))
KAM_CHILDREN=8      # Kamailio UDP worker processes (its default)
OUT=""
BUILD=1
BIN_DIR=""          # sb-loadgen and switchboard from here instead of a release build
DOMAIN=bench.example
RTP_PORTS=10000-19999   # below the kernel's ephemeral range

while [ $# -gt 0 ]; do
    case "$1" in
        --rate) RATE=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --calls-rate) CALLS_RATE=$2; shift 2 ;;
        --postgres) PG=${2%/}; shift 2 ;;
        --backends) BACKENDS=$2; shift 2 ;;
        --users) USERS=$2; shift 2 ;;
        --kamailio-children) KAM_CHILDREN=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --bin-dir) BIN_DIR=$2; BUILD=0; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option: $1" >&2; usage ;;
    esac
done

int() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || { echo "$1 must be a positive integer, got '$2'" >&2; exit 2; }; }
int --rate "$RATE"; int --calls-rate "$CALLS_RATE"; int --kamailio-children "$KAM_CHILDREN"
[ -z "$USERS" ] || int --users "$USERS"
secs() { # 10s, 500ms, 2m -> whole seconds, rounded up
    case "$1" in
        *ms) echo $(( (${1%ms} + 999) / 1000 )) ;;
        *s) echo "${1%s}" ;;
        *m) echo $(( ${1%m} * 60 )) ;;
        *) echo "--duration: use 500ms, 10s or 2m" >&2; exit 2 ;;
    esac
}
DUR_S=$(secs "$DURATION"); int --duration "$DUR_S"

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BENCH_PY="$HERE/bench.py"
command -v kamailio >/dev/null || { echo "kamailio not found (apt-get install kamailio)" >&2; exit 2; }
[ -n "$BACKENDS" ] || { if [ -n "$PG" ]; then BACKENDS=postgres; else BACKENDS=sqlite; fi; }
for b in ${BACKENDS//,/ }; do
    case "$b" in
        sqlite) ;;
        postgres) [ -n "$PG" ] || { echo "--backends postgres needs --postgres URL" >&2; exit 2; }
                  command -v psql >/dev/null || { echo "--postgres needs psql" >&2; exit 2; } ;;
        *) echo "--backends: sqlite, postgres or sqlite,postgres" >&2; exit 2 ;;
    esac
done

# ---- build -----------------------------------------------------------------
cd "$ROOT"
if [ "$BUILD" = 1 ]; then
    echo "== cargo build --release -p loadgen -p switchboard" >&2
    cargo build --release -p loadgen -p switchboard >&2
fi
if [ -z "$BIN_DIR" ]; then
    TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    BIN_DIR="$TARGET/release"
fi
LG="$BIN_DIR/sb-loadgen"
SB="$BIN_DIR/switchboard"
[ -x "$LG" ] && [ -x "$SB" ] || { echo "sb-loadgen or switchboard missing in $BIN_DIR" >&2; exit 2; }

# ---- work directory, users ---------------------------------------------------
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/sb-bench.XXXXXX)
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
: > "$OUT/runs.tsv"

# Calls get their own users so that no callee has a stale binding left by the
# register run (a registrar would fork the INVITE to it): the first CALL_USERS
# rows call each other (half callers, half callees: 2 s of calls in flight),
# the rest register.
CALL_USERS=$(( CALLS_RATE * 4 )); [ "$CALL_USERS" -ge 400 ] || CALL_USERS=400
[ -n "$USERS" ] || { USERS=$RATE; [ "$USERS" -ge 1000 ] || USERS=1000; }
TOTAL=$(( USERS + CALL_USERS ))
[ $(( 200000 + TOTAL - 1 )) -le 999999 ] || { echo "too many users ($TOTAL): extension numbers have at most 6 digits" >&2; exit 2; }
# callees register in the calls run's first phase in about 2 s
REG_RATE=$(( CALL_USERS / 2 / 2 )); [ "$REG_RATE" -ge 500 ] || REG_RATE=500

"$LG" users --count "$TOTAL" --domain "$DOMAIN" --out "$OUT/users.csv" --import-csv "$OUT/ext.csv" >&2
head -n $(( CALL_USERS + 1 )) "$OUT/users.csv" > "$OUT/calls-users.csv"
{ head -n 1 "$OUT/users.csv"; tail -n +$(( CALL_USERS + 2 )) "$OUT/users.csv"; } > "$OUT/reg-users.csv"

# ---- process bookkeeping -----------------------------------------------------
PIDS=()          # everything started in the background, stopped on exit
PG_DB=""
alive() { # PID: running (an exited child not yet reaped is a zombie: not running)
    [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
stop_pid() { # PID (a child of this script): TERM, up to 10 s, then KILL; reap it
    local p=$1 i
    if alive "$p"; then
        kill -TERM "$p" 2>/dev/null || true
        for i in $(seq 1 50); do alive "$p" || break; sleep 0.2; done
        alive "$p" && kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null || true
}
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && stop_pid "$p"; done
    if [ -n "$PG_DB" ]; then
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); t=socket.socket(); t.bind(("127.0.0.1", s.getsockname()[1])); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# measure LABEL TAG SERVER_PID ADDR: the register run, then the calls run
measure() {
    local label=$1 tag=$2 pid=$3 addr=$4 t0 t1 rc=0
    python3 "$BENCH_PY" sample "$OUT/$tag-cpu.txt" "$pid" & PIDS+=($!)
    sleep 0.3
    echo "== $label: register $RATE/s for $DURATION" >&2
    t0=$(now)
    timeout $(( DUR_S + 60 )) "$LG" register --server "$addr" --users "$OUT/reg-users.csv" \
        --rate "$RATE" --duration "$DURATION" --server-pid "$pid" --json \
        > "$OUT/$tag-register.json" 2> "$OUT/$tag-register.err" || rc=$?
    t1=$(now)
    printf '%s\tregister %s/s × %s\tregister\t%s\t%s\t%s\t%s\n' "$label" "$RATE" "$DURATION" \
        "$OUT/$tag-register.json" "$OUT/$tag-cpu.txt" "$t0" "$t1" >> "$OUT/runs.tsv"
    [ "$rc" -le 1 ] || { echo "   sb-loadgen register exited $rc: $(tail -n 3 "$OUT/$tag-register.err")" >&2; }
    rc=0
    echo "== $label: calls $CALLS_RATE/s for $DURATION, hold 0" >&2
    t0=$(now)
    timeout $(( DUR_S + 120 )) "$LG" calls --server "$addr" --users "$OUT/calls-users.csv" \
        --rate "$CALLS_RATE" --duration "$DURATION" --hold 0 --register-rate "$REG_RATE" \
        --server-pid "$pid" --json \
        > "$OUT/$tag-calls.json" 2> "$OUT/$tag-calls.err" || rc=$?
    t1=$(now)
    printf '%s\tcalls %s/s × %s, hold 0\tcalls\t%s\t%s\t%s\t%s\n' "$label" "$CALLS_RATE" "$DURATION" \
        "$OUT/$tag-calls.json" "$OUT/$tag-cpu.txt" "$t0" "$t1" >> "$OUT/runs.tsv"
    [ "$rc" -le 1 ] || { echo "   sb-loadgen calls exited $rc: $(tail -n 3 "$OUT/$tag-calls.err")" >&2; }
    sleep 0.2
}

# ---- Kamailio ----------------------------------------------------------------
python3 "$BENCH_PY" ha1 "$OUT/users.csv" "$OUT/kamdb" >&2
KPORT=$(free_port)
mkdir -p "$OUT/kamrun"
echo "== kamailio on 127.0.0.1:$KPORT ($KAM_CHILDREN workers)" >&2
kamailio -f "$HERE/kamailio.cfg" -DD -E -T -S -n "$KAM_CHILDREN" -m 512 -M 16 \
    -Y "$OUT/kamrun" -P "$OUT/kamrun/kamailio.pid" \
    -A "LISTEN=udp:127.0.0.1:$KPORT" -A "HA1_DB=\"text://$OUT/kamdb\"" \
    -A "BENCH_DOMAIN=\"$DOMAIN\"" > "$OUT/kamailio.log" 2>&1 &
KPID=$!; PIDS+=("$KPID")
python3 "$BENCH_PY" probe 127.0.0.1 "$KPORT" 20 \
    || { echo "kamailio did not answer; see $OUT/kamailio.log" >&2; tail -n 20 "$OUT/kamailio.log" >&2; exit 1; }
sleep 1  # let every worker finish its start-up
measure "kamailio 5.6" kamailio "$KPID" "127.0.0.1:$KPORT"
stop_pid "$KPID"

# ---- Switchboard -------------------------------------------------------------
# switchboard BACKEND: a fresh directory (SQLite file or Postgres database),
# the same extensions, then the same two runs
switchboard() {
    local backend=$1 db_url tag="switchboard-$1" spid i
    if [ "$backend" = postgres ]; then
        PG_DB="sb_bench_$$_$RANDOM"
        psql -q "$PG/postgres" -c "CREATE DATABASE $PG_DB" >/dev/null
        db_url="$PG/$PG_DB"
    else
        db_url="sqlite://$OUT/switchboard.db"
    fi
    SPORT=$(free_port); HPORT=$(free_port)
    export SWITCHBOARD_DATABASE_URL="$db_url" SWITCHBOARD_SIP_ADDR="127.0.0.1:$SPORT" \
        SWITCHBOARD_HTTP_ADDR="127.0.0.1:$HPORT" SWITCHBOARD_RTP_PORTS="$RTP_PORTS" \
        SWITCHBOARD_CDR_SPILL="$OUT/$tag-cdr-spill.jsonl"
    echo "== switchboard ($backend) on 127.0.0.1:$SPORT: provisioning $TOTAL extensions" >&2
    { "$SB" migrate && "$SB" tenant add --name "Bench" --domain "$DOMAIN" \
        && "$SB" extension import --tenant "$DOMAIN" "$OUT/ext.csv"; } > "$OUT/$tag-provision.log" 2>&1 \
        || { tail -n 20 "$OUT/$tag-provision.log" >&2; exit 1; }
    "$SB" serve > "$OUT/$tag.log" 2>&1 &
    spid=$!; PIDS+=("$spid")
    for i in $(seq 1 100); do
        "$SB" healthcheck >/dev/null 2>&1 && break
        alive "$spid" || { tail -n 20 "$OUT/$tag.log" >&2; exit 1; }
        sleep 0.2
    done
    python3 "$BENCH_PY" probe 127.0.0.1 "$SPORT" 20 \
        || { echo "switchboard did not answer SIP; see $OUT/$tag.log" >&2; exit 1; }
    measure "switchboard ($backend)" "$tag" "$spid" "127.0.0.1:$SPORT"
    stop_pid "$spid"
    if [ "$backend" = postgres ]; then
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
        PG_DB=""
    fi
}
for b in ${BACKENDS//,/ }; do switchboard "$b"; done

# ---- report ------------------------------------------------------------------
echo >&2
echo "Reports, logs and samples: $OUT" >&2
echo "Machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2
echo
python3 "$BENCH_PY" report "$OUT"
