#!/usr/bin/env bash
# Seeded chaos for the live executor: submits JOBS short jobs to `tessera exec serve` over its
# HTTP API and SIGKILLs the daemon KILLS times at moments drawn from SEED, restarting it on the
# same state dir each time, then checks from the outside that the executor kept its promise.
#
#   scripts/chaos.sh --seed N --jobs J --kills K [--keep] [--no-build]
#   scripts/chaos.sh --check DIR      # the verdict again, on a run kept with --keep (or failed)
#   scripts/chaos.sh --self-test [--no-build]   # shows the verdict fails when it should
#
# Needs bash, coreutils, curl and jq (`.ci/run` installs the last two where missing), and the
# binary built with `--features exec` (built here unless --no-build; $CARGO_TARGET_DIR is
# honoured, as is $TESSERA_BIN for a binary elsewhere).
#
# What the executor promises (README, "Running jobs live"; exec/README.md, "Durability and
# recovery"): a submission is journalled before its 201, and a daemon killed with SIGKILL and
# restarted on the same state dir adopts the jobs still running and runs none twice. Job
# processes run in their own session, so a SIGKILL of the daemon leaves them running, and this
# script never kills a job. So every job's command must start exactly once: a run the
# executor requeues because it never started (killed between journalling a launch and the
# spawn) is allowed, since its command did not run, and is counted as `requeued` for
# information.
#
# The kills: each has a mode drawn from the seed.
#   burst     a burst of 1-16 concurrent submissions is sent and the daemon is killed 0-29 ms
#             later, while some are in flight (before, during or after their commit);
#   recovery  right after the previous kill's restart, 0-299 ms into the new daemon's life:
#             before it listens, while it recovers (adopts, collects, requeues) or just after;
#   quiet     once a burst is answered, 0-199 ms later, while jobs run and end.
# The schedule (burst sizes, gaps, which kill comes where, each delay) is a pure function of
# the seed (bash's RANDOM, seeded with RANDOM=SEED); the moments the machine reaches each
# point are not, so a seed reproduces the schedule, not every interleaving.
#
# Each job is `sh -c` writing a line `start RESTART_COUNT PID NANOS` to markers/<job id>, then
# sleeping 0.05-0.30 s, then writing `end RESTART_COUNT PID NANOS`: the record of what ran is
# the jobs' own, not the daemon's word.
#
# The verdict, over every job the final `GET /v1/jobs` lists or a 201 named:
#   acknowledged  a submission answered 2xx with a job id;
#   lost          an acknowledged job that is not listed, or did not end `completed` with exit
#                 status 0, or whose command never completed a run (no `end` marker), or
#                 whose listed name is not the submission's;
#   duplicated    a job whose command started more than once (two `start` markers), plus every
#                 id a 201 gave to two submissions and every submission listed under two ids;
#                 this covers jobs committed but never acknowledged (the reply lost in a kill),
#                 which may exist or not but must not run twice;
#   overlaps      a job with two runs whose [start, end] intervals intersect, or a run with no
#                 end followed by another run.
# It prints `lost L, duplicated D, overlaps O` and exits 1 unless all three are 0 (2 on a setup
# error), with a line that reproduces the run.
set -euo pipefail

usage() { echo "usage: $0 --seed N --jobs J --kills K [--keep] [--no-build] | --check DIR | --self-test" >&2; exit 2; }
seed="" jobs="" kills="" keep=0 build=1 check_dir="" self_test=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="${2:-}"; shift 2 ;;
    --jobs) jobs="${2:-}"; shift 2 ;;
    --kills) kills="${2:-}"; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-build) build=0; shift ;;
    --check) check_dir="${2:-}"; shift 2 ;;
    --self-test) self_test=1; shift ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
if [ "$self_test" = 1 ]; then
  # The verdict must be able to fail: a real run is kept, then copies of it are altered in
  # the three ways the verdict exists to catch, and each copy must be judged so.
  self="$0"
  no_build=""; [ "$build" = 1 ] || no_build=--no-build
  out=$("$self" --seed 7 --jobs 20 --kills 1 --keep $no_build 2>&1) || { echo "$out"; echo "chaos self-test: the base run failed" >&2; exit 1; }
  kept=$(sed -n 's/^chaos: kept //p' <<<"$out")
  [ -d "$kept" ] || { echo "$out"; echo "chaos self-test: no kept run" >&2; exit 1; }
  first=$(jq -r '[.[] | select(.state == "completed")][0].id' "$kept/jobs.json")
  second=$(jq -r '[.[] | select(.state == "completed")][1].id' "$kept/jobs.json")
  expect() { # name, jq filter on jobs.json, marker edit, wanted verdict line
    local name=$1 filter=$2 edit=$3 want=$4 copy="$kept.$1" verdict
    cp -r "$kept" "$copy"
    jq "$filter" "$kept/jobs.json" > "$copy/jobs.json"
    (cd "$copy/markers" && eval "$edit")
    verdict=$("$self" --check "$copy" 2>/dev/null | grep '^lost ') && { echo "chaos self-test: $name: judged a pass: $verdict" >&2; exit 1; }
    [ "$verdict" = "$want" ] || { echo "chaos self-test: $name: expected '$want', got '$verdict'" >&2; exit 1; }
    echo "chaos self-test: $name -> $verdict"
    rm -rf "$copy"
  }
  # A job the list no longer has (and its markers gone with it).
  expect lost "map(select(.id != $first))" "rm -f $first" "lost 1, duplicated 0, overlaps 0"
  # A job whose command ran a second time, after the first run ended.
  # (bash arithmetic: the nanoseconds exceed what awk prints exactly)
  shift_runs() { # file, ns added to every time: appends a copy of its runs, as another pid
    local lines kind restart pid ns
    lines=$(cat "$1")
    while read -r kind restart pid ns; do echo "$kind $restart $((pid + 1000000)) $((ns + $2))"; done <<<"$lines" >> "$1"
  }
  expect duplicated . "shift_runs $first 5000000000" "lost 0, duplicated 1, overlaps 0"
  # A second run that started before the first ended.
  expect overlap . "shift_runs $second 1000" "lost 0, duplicated 1, overlaps 1"
  rm -rf "$kept"
  echo "chaos self-test: the verdict catches a lost job, a second run and overlapping runs"
  exit 0
fi

if [ -n "$check_dir" ]; then
  [ -f "$check_dir/run.env" ] || { echo "chaos: $check_dir is not a kept chaos run (no run.env)" >&2; exit 2; }
  # shellcheck disable=SC1091
  . "$check_dir/run.env"
fi
for v in seed jobs kills; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "--$v needs a non-negative integer, found '${!v}'" >&2; usage; }
done
[ "$jobs" -ge 1 ] || { echo "--jobs must be at least 1" >&2; exit 2; }
for tool in curl jq sha256sum date; do
  command -v "$tool" >/dev/null || { echo "chaos: needs $tool (.ci/run installs curl and jq)" >&2; exit 2; }
done

reproduce="scripts/chaos.sh --seed $seed --jobs $jobs --kills $kills"
if [ -n "$check_dir" ]; then
  work="$check_dir" markers="$check_dir/markers" replies="$check_dir/replies"
else
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${TESSERA_BIN:-}" ]; then
  bin="$TESSERA_BIN"
else
  target="${CARGO_TARGET_DIR:-$root/target}"
  bin="$target/release/tessera"
  if [ "$build" = 1 ]; then
    (cd "$root" && cargo build --release --locked --features exec --bin tessera)
  fi
fi
[ -x "$bin" ] || { echo "chaos: no executable at $bin (build with: cargo build --release --features exec)" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-chaos.XXXXXX")"
state="$work/state" markers="$work/markers" replies="$work/replies" log="$work/serve.log"
mkdir -p "$state" "$markers" "$replies"
echo "seed=$seed jobs=$jobs kills=$kills" > "$work/run.env"
daemon_pid=""
cleanup() {
  local status=$?
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  if [ "$status" -eq 0 ] && [ "$keep" = 0 ]; then rm -rf "$work"; else echo "chaos: kept $work"; fi
}
trap cleanup EXIT

token="tsr_chaos_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
token_sha="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
write_config() {
  cat > "$work/exec.toml" <<EOF
[daemon]
state_dir = "$state"
allow_unvalidated = true
grace_s = 5.0
[daemon.policy]
name = "fifo"
[daemon.cpu]
devices = 2
cores_per_device = 1
[daemon.gpu]
enabled = false
[api]
listen = "127.0.0.1:$1"
[[api.tokens]]
name = "chaos"
role = "operate"
sha256 = "$token_sha"
EOF
}

now_ms() { local ns; ns=$(date +%s%N); echo $((ns / 1000000)); }
start_ms=$(now_ms)
started_ms=0
start_daemon() {
  "$bin" exec serve --config "$work/exec.toml" >>"$log" 2>&1 &
  daemon_pid=$!
  started_ms=$(now_ms)
}
died_alone=0
kill_daemon() {
  if ! kill -0 "$daemon_pid" 2>/dev/null; then
    died_alone=$((died_alone + 1))
    echo "chaos: the daemon (pid $daemon_pid) had exited on its own before kill; log: $log" >&2
  fi
  kill -KILL "$daemon_pid" 2>/dev/null || true
  wait "$daemon_pid" 2>/dev/null || true
}
bind_retries=0
wait_healthy() {
  local bind_retries_left=20
  local deadline=$(( $(now_ms) + 60000 ))
  until curl -s -o /dev/null --max-time 1 "$addr/healthz"; do
    if ! kill -0 "$daemon_pid" 2>/dev/null && [ "$bind_retries_left" -gt 0 ] && tail -n 1 "$log" | grep -q 'Address already in use'; then
      # Seen once in development: the port of a daemon just killed was still taken at the
      # next start (EADDRINUSE; the likely holder, not confirmed, is a child forked at the
      # moment of the kill, which keeps the listening socket until its exec). Start again,
      # as a supervisor would, and count it.
      bind_retries=$((bind_retries + 1)) bind_retries_left=$((bind_retries_left - 1))
      sleep 0.05
      start_daemon
      continue
    fi
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
      echo "chaos: the daemon exited on its own while starting; last lines of $log:" >&2
      tail -n 20 "$log" >&2
      { command -v ss >/dev/null && ss -ltnp "sport = :$port" >&2; } || true
      echo "reproduce: $reproduce" >&2
      exit 1
    fi
    [ "$(now_ms)" -lt "$deadline" ] || { echo "chaos: the daemon did not answer /healthz within 60 s" >&2; exit 1; }
    sleep 0.01
  done
}
sleep_ms() { [ "$1" -gt 0 ] && sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; return 0; }

# First start on port 0 to learn a free port; every restart then listens there.
write_config 0
start_daemon
for _ in $(seq 1 600); do
  port=$(sed -n 's/^tessera exec: listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  [ -n "$port" ] && break
  kill -0 "$daemon_pid" 2>/dev/null || { echo "chaos: exec serve failed to start:" >&2; cat "$log" >&2; exit 2; }
  sleep 0.05
done
[ -n "${port:-}" ] || { echo "chaos: exec serve did not say its port; log: $log" >&2; exit 2; }
write_config "$port"
addr="http://127.0.0.1:$port"
wait_healthy

# ---- the schedule, from the seed alone -------------------------------------------------
RANDOM=$seed
burst_sizes=() gaps_ms=() durations=()
total=0
while [ "$total" -lt "$jobs" ]; do
  size=$((1 + RANDOM % 16))
  [ $((total + size)) -le "$jobs" ] || size=$((jobs - total))
  burst_sizes+=("$size")
  gaps_ms+=($((RANDOM % 250)))
  total=$((total + size))
done
for ((n = 0; n < jobs; n++)); do durations+=("0.$(printf '%02d' $((5 + RANDOM % 26)))"); done
bursts=${#burst_sizes[@]}
# kills_at[b]: the kills (as "mode:delay_ms") carried out at burst b, in order.
declare -A kills_at=()
modes=(burst recovery quiet)
for ((k = 0; k < kills; k++)); do
  mode=${modes[$((RANDOM % 3))]}
  # A `recovery` kill comes right after the previous kill's restart, at the same burst; the
  # first kill has none before it and becomes a `burst` kill.
  b=$((RANDOM % bursts))
  case $mode in
    burst) delay=$((RANDOM % 30)) ;;
    recovery) delay=$((RANDOM % 300)) ;;
    quiet) delay=$((RANDOM % 200)) ;;
  esac
  if [ "$mode" = recovery ] && [ "$k" -gt 0 ]; then
    b=$last_b
  elif [ "$mode" = recovery ]; then
    mode=burst; delay=$((delay % 30))
  fi
  kills_at[$b]="${kills_at[$b]:-} $mode:$delay"
  last_b=$b
done

# ---- submissions and kills --------------------------------------------------------------
script='m="$1/$TESSERA_JOB_ID"; echo "start $TESSERA_RESTART_COUNT $$ $(date +%s%N)" >> "$m"; sleep "$2"; echo "end $TESSERA_RESTART_COUNT $$ $(date +%s%N)" >> "$m"'
script_json=$(printf '%s' "$script" | jq -Rs .)
submit() {
  local n=$1
  local body="{\"name\":\"chaos-$n\",\"command\":\"sh\",\"args\":[\"-c\",$script_json,\"chaos\",\"$markers\",\"${durations[$n]}\"],\"devices\":{\"count\":1,\"share\":0.25},\"tenant\":\"chaos\",\"time_limit_s\":120}"
  local code
  code=$(curl -s -o "$replies/$n.body" -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' --data-binary "$body" "$addr/v1/jobs" 2>/dev/null) || true
  echo "${code:-000}" > "$replies/$n.code"
}
declare -A mode_count=([burst]=0 [recovery]=0 [quiet]=0)
n=0
for ((b = 0; b < bursts; b++)); do
  wait_healthy
  curl_pids=()
  for ((i = 0; i < ${burst_sizes[$b]}; i++)); do
    submit "$n" &
    curl_pids+=($!)
    n=$((n + 1))
  done
  sent_ms=$(now_ms)
  answered=0
  for kill in ${kills_at[$b]:-}; do
    mode=${kill%%:*} delay=${kill##*:}
    case $mode in
      burst) sleep_ms $((sent_ms + delay - $(now_ms))) ;;
      recovery) sleep_ms $((started_ms + delay - $(now_ms))) ;;
      quiet)
        [ "$answered" = 1 ] || { wait "${curl_pids[@]}" 2>/dev/null || true; answered=1; }
        sleep_ms "$delay" ;;
    esac
    kill_daemon
    mode_count[$mode]=$((mode_count[$mode] + 1))
    echo "$(( $(now_ms) - start_ms )) ms: kill $((mode_count[burst] + mode_count[recovery] + mode_count[quiet])) ($mode, +$delay ms) of pid $daemon_pid at burst $b" >> "$work/kills.log"
    start_daemon
  done
  [ "$answered" = 1 ] || wait "${curl_pids[@]}" 2>/dev/null || true
  sleep_ms "${gaps_ms[$b]}"
done

# ---- every job must end; then read the final state -----------------------------------
wait_healthy
deadline=$(( $(now_ms) + 120000 + jobs * 500 ))
while :; do
  curl -s --max-time 30 -H "Authorization: Bearer $token" "$addr/v1/jobs" > "$work/jobs.json" || true
  live=$(jq '[.[] | select(.state == "queued" or .state == "launching" or .state == "running" or .state == "preempting")] | length' "$work/jobs.json" 2>/dev/null || echo unknown)
  [ "$live" = 0 ] && break
  if [ "$(now_ms)" -ge "$deadline" ]; then
    echo "chaos: jobs still live (or the list unreadable: $live) after the deadline" >&2
    break
  fi
  sleep 0.2
done
kill -TERM "$daemon_pid" 2>/dev/null || true
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""
wall_s=$(( ($(now_ms) - start_ms) / 1000 ))

fi

# ---- the verdict ----------------------------------------------------------------------
declare -A acked_id_of=() submission_of_id=() listed_state=() listed_exit=() listed_name=() listed_restarts=()
acknowledged=0 unanswered=0 refused=0 duplicated=0 lost=0 overlaps=0 requeued=0 committed_unacked=0
problems="$work/problems.txt"
: > "$problems"
# The ids in the 2xx answers, read in one jq (a body that is not JSON reads as no id).
declare -A id_in_reply=()
ok_bodies=()
for ((n = 0; n < jobs; n++)); do
  code=$(< "$replies/$n.code") || code=000
  [[ "$code" == 2?? ]] && ok_bodies+=("$replies/$n.body")
done
if [ ${#ok_bodies[@]} -gt 0 ]; then
  while read -r file id; do
    n=$(basename "$file" .body)
    id_in_reply[$n]=$id
  done < <(jq -r '"\(input_filename) \(.id // "")"' "${ok_bodies[@]}" 2>/dev/null || true)
fi
for ((n = 0; n < jobs; n++)); do
  code=$(< "$replies/$n.code") || code=000
  if [[ "$code" == 2?? ]]; then
    id=${id_in_reply[$n]}
    if [[ ! "$id" =~ ^[0-9]+$ ]]; then
      echo "submission $n: $code without a job id: $(head -c 200 "$replies/$n.body")" >> "$problems"; lost=$((lost + 1)); continue
    fi
    acknowledged=$((acknowledged + 1))
    acked_id_of[$n]=$id
    if [ -n "${submission_of_id[$id]:-}" ]; then
      echo "job $id: given to submissions ${submission_of_id[$id]} and $n" >> "$problems"
      duplicated=$((duplicated + 1))
    fi
    submission_of_id[$id]=$n
  elif [ "$code" = 000 ]; then
    unanswered=$((unanswered + 1))
  else
    refused=$((refused + 1))
    echo "submission $n: answered $code: $(head -c 200 "$replies/$n.body")" >> "$problems"
  fi
done
if ! jq -e 'type == "array"' "$work/jobs.json" >/dev/null 2>&1; then
  echo "chaos: the final job list could not be read: $(head -c 300 "$work/jobs.json")" >&2
  echo "reproduce: $reproduce" >&2
  exit 1
fi
declare -A listed_under=()
while read -r id name state exit_code restarts; do
  listed_state[$id]=$state listed_exit[$id]=$exit_code listed_name[$id]=$name listed_restarts[$id]=$restarts
  [ "$restarts" -gt 0 ] && requeued=$((requeued + 1))
  if [ -n "${listed_under[$name]:-}" ]; then
    echo "submission $name listed as jobs ${listed_under[$name]} and $id" >> "$problems"; duplicated=$((duplicated + 1))
  fi
  listed_under[$name]=$id
  n=${name#chaos-}
  if [ -z "${acked_id_of[$n]:-}" ]; then committed_unacked=$((committed_unacked + 1)); fi
done < <(jq -r '.[] | "\(.id) \(.name) \(.state) \(.exit_code // "none") \(.restarts)"' "$work/jobs.json")

# The runs each job's command recorded, from its markers, in one awk pass: per job id, how
# many runs started and ended, and whether two overlap (sorted by start, each run must end
# before the next starts; a run with no end followed by another counts as an overlap).
declare -A run_starts=() run_ends=() run_overlap=()
if compgen -G "$markers/*" >/dev/null; then
  while read -r id starts ends overlap; do
    run_starts[$id]=$starts run_ends[$id]=$ends run_overlap[$id]=$overlap
  done < <(awk '
    { n = split(FILENAME, parts, "/"); id = parts[n]; ids[id] = 1 }
    $1 == "start" { starts[id]++; runs[id] = runs[id] " " $3; start_ns[id, $3] = $4 }
    $1 == "end" { ends[id]++; end_ns[id, $3] = $4 }
    END {
      for (id in ids) {
        k = split(runs[id], pid, " ")
        for (i = 2; i <= k; i++) {   # insertion sort by start time
          p = pid[i]; j = i - 1
          while (j >= 1 && start_ns[id, pid[j]] + 0 > start_ns[id, p] + 0) { pid[j + 1] = pid[j]; j-- }
          pid[j + 1] = p
        }
        overlap = 0
        for (i = 2; i <= k; i++) {
          prev = pid[i - 1]
          if (!((id, prev) in end_ns) || end_ns[id, prev] + 0 > start_ns[id, pid[i]] + 0) overlap = 1
        }
        printf "%s %d %d %d\n", id, starts[id], ends[id], overlap
      }
    }' "$markers"/*)
fi
for id in "${!listed_state[@]}"; do
  if [ "${run_starts[$id]:-0}" -gt 1 ]; then
    duplicated=$((duplicated + 1)); echo "job $id (${listed_name[$id]}): its command started ${run_starts[$id]} times: $(tr '\n' ';' < "$markers/$id")" >> "$problems"
  fi
  if [ "${run_overlap[$id]:-0}" = 1 ]; then
    overlaps=$((overlaps + 1)); echo "job $id (${listed_name[$id]}): runs overlap: $(tr '\n' ';' < "$markers/$id")" >> "$problems"
  fi
done
for n in "${!acked_id_of[@]}"; do
  id=${acked_id_of[$n]}
  why=""
  if [ -z "${listed_state[$id]:-}" ]; then
    why="acknowledged, not listed"
  elif [ "${listed_name[$id]}" != "chaos-$n" ]; then
    why="listed as ${listed_name[$id]}"
  elif [ "${listed_state[$id]}" != completed ] || [ "${listed_exit[$id]}" != 0 ]; then
    why="ended ${listed_state[$id]}, exit ${listed_exit[$id]}"
  elif [ "${run_ends[$id]:-0}" -lt 1 ]; then
    why="completed, but its command never completed a run"
  fi
  if [ -n "$why" ]; then lost=$((lost + 1)); echo "job $id (submission $n): $why" >> "$problems"; fi
done
# Markers of ids no list knows: a run of a job the executor lost track of.
for file in "$markers"/*; do
  [ -e "$file" ] || break
  id=$(basename "$file")
  if [ -z "${listed_state[$id]:-}" ]; then
    echo "markers for job $id, which the executor does not list: $(tr '\n' ';' < "$file")" >> "$problems"; lost=$((lost + 1))
  fi
done

[ -n "$check_dir" ] || echo "chaos: seed $seed, $jobs submissions in $bursts bursts, $kills kills (burst ${mode_count[burst]}, recovery ${mode_count[recovery]}, quiet ${mode_count[quiet]}), $wall_s s"
echo "chaos: acknowledged $acknowledged, unanswered (connection cut by a kill) $unanswered, refused $refused, committed but unacknowledged $committed_unacked, requeued before starting $requeued, daemon exits not caused by us ${died_alone:-?}, restarts retried because the port was still taken ${bind_retries:-?}"
echo "lost $lost, duplicated $duplicated, overlaps $overlaps"
if [ "$lost" -ne 0 ] || [ "$duplicated" -ne 0 ] || [ "$overlaps" -ne 0 ] || [ "$refused" -ne 0 ] || [ "${died_alone:-0}" -ne 0 ]; then
  head -n 50 "$problems" >&2
  echo "reproduce: $reproduce   (state, markers and log kept in $work)" >&2
  keep=1
  exit 1
fi
