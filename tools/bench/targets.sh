#!/usr/bin/env bash
# targets.sh DIR: ratios of shmq to every other mechanism and the issue's
# targets, from the shmq-bench JSON files in DIR (guest-KVER.json from
# `make bench`; native.json has no shmq rows and is only listed).
# Writes DIR/ratios.csv (one row per run x workload x size x shmq variant x
# other mechanism: how many times better shmq is, > 1 = shmq wins) and prints
# the targets with MET / NOT MET. Exit status 0 even when a target is missed
# (a benchmark never fails a build on timing); 1 when no guest JSON exists.
set -euo pipefail
dir=${1:?usage: targets.sh DIR}
shopt -s nullglob
guests=("$dir"/guest-*.json)
if [ ${#guests[@]} -eq 0 ]; then
	echo "targets: no $dir/guest-*.json (make bench-guest)" >&2
	exit 1
fi

# ratio(a; b): how many times better row a is than row b (null if either is
# missing): throughput a/b, round trip b/a.
lib='
def ok: select(.status == "ok");
def row($m; $w; $s): first(.rows[] | ok | select(.mechanism == $m and .workload == $w and .size == $s)) // null;
def ratio($a; $b):
	if $a == null or $b == null then null
	elif $a.workload == "pingpong" then
		(if $a.rtt_median_us > 0 then $b.rtt_median_us / $a.rtt_median_us else null end)
	else (if $b.msgs_per_s > 0 then $a.msgs_per_s / $b.msgs_per_s else null end) end;
def minratio($a; $b): if $a == null or $b == null or $a.rtt_min_us <= 0 then null else $b.rtt_min_us / $a.rtt_min_us end;
def f2: if . == null then "n/a" else (. * 100 | round / 100 | tostring) end;
# Lane queues (issue 10): shmq-lanes against the single-producer queue
# (stream, 1 lane) and against every other fan-in mechanism, as one line.
def lanes_line($d):
	def r($m; $w): $d | row($m; $w; 64);
	"shmq-lanes / shmq-zc (stream, 1 producer): \(ratio(r("shmq-lanes"; "stream"); r("shmq-zc"; "stream")) | f2)x"
	+ ([$d.rows[] | ok | select(.workload == "fanin" and .size == 64) | .mechanism
	    | select(startswith("shmq") | not)] | unique
	   | map("; fanin \(.): \(ratio(r("shmq-lanes"; "fanin"); r(.; "fanin")) | f2)x") | add // "");
'

echo "run,kernel,workload,size,shmq,other,ratio" >"$dir/ratios.csv"
for g in "${guests[@]}"; do
	run=$(basename "$g" .json)
	jq -r --arg run "$run" "$lib"'
		.host.kernel as $k | . as $d
		| [.rows[] | ok | .mechanism | select(startswith("shmq"))] | unique as $shmq
		| $d.rows[] | ok | select(.mechanism | startswith("shmq") | not) as $o
		| $shmq[] as $s
		| ratio($d | row($s; $o.workload; $o.size); $o) as $r
		| select($r != null)
		| [$run, $k, $o.workload, $o.size, $s, $o.mechanism, ($r * 1000 | round / 1000)] | @csv' \
		"$g" | tr -d '"' >>"$dir/ratios.csv"
done

for g in "${guests[@]}"; do
	jq -r "$lib"'
		. as $d
		| def r($m; $w; $s): $d | row($m; $w; $s);
		  def line($ok; $text): (if $ok == null then "n/a    " elif $ok then "MET    " else "NOT MET" end) + "  " + $text;
		  def vsmin($s; $o; $size; $min):
			minratio(r($s; "pingpong"; $size); r($o; "pingpong"; $size)) as $x
			| line(if $x == null then null else $x >= $min end;
			       "\($s) / \($o), fastest round trip (min): \($x | f2)x (target >= \($min | f2)x)");
		  def vs($s; $o; $w; $size; $min):
			ratio(r($s; $w; $size); r($o; $w; $size)) as $x
			| line(if $x == null then null else $x >= $min end;
			       "\($s) / \($o): \($x | f2)x (target >= \($min | f2)x)");
		"Targets, \($d.host.kernel) guest, \($d.host.cpus) vCPUs, median of \($d.rounds // 1) rounds per cell (ratios only: TCG)",
		"  (a / b: how many times better a is than b: msgs/s a/b, round trip b/a)",
		"  streaming 64 B (msgs/s):",
		(("shmq-zc", "shmq-copy") as $s
		 | "    " + vs($s; "ring-futex"; "stream"; 64; 1)),
		(("shmq-zc", "shmq-copy") as $s
		 | ([$d.rows[] | ok | select(.workload == "stream" and .size == 64)
		     | .mechanism | select(test("^(pipe|unix-|posix-mq|zmq|zeromq)"))] | unique[]) as $o
		 | "    " + vs($s; $o; "stream"; 64; 10)),
		"  zero-copy streaming 1 MiB vs one memcpy per message (single process):",
		"    " + vs("shmq-zc"; "memcpy"; "stream"; 1048576; 0.8),
		"    " + vs("ring-futex"; "memcpy"; "stream"; 1048576; 0.8) + "   (the hand-written ring, for comparison)",
		"    " + vs("shmq-zc"; "fill-check"; "stream"; 1048576; 0.8) + "   (the benchmark'"'"'s own fill + verify in one process)",
		"  blocking ping-pong 64 B (round-trip median):",
		(("shmq-zc", "shmq-copy") as $s | "    " + vs($s; "ring-futex"; "pingpong"; 64; 1)),
		(("shmq-zc", "shmq-copy") as $s | "    " + vsmin($s; "ring-futex"; 64; 1)),
		"  spin-then-sleep ping-pong 64 B vs the busy-polling ring (within 3x):",
		(("shmq-zc-spin", "shmq-copy-spin") as $s | "    " + vs($s; "ring-busy"; "pingpong"; 64; 1/3)),
		(("shmq-zc-spin", "shmq-copy-spin") as $s | "    " + vsmin($s; "ring-busy"; 64; 1/3)),
		"    (idle CPU use of a spinning waiter: guest test SpinIdle, figure spin_idle_consumer_cpu_us)",
		"  lane queues: 1 producer on a lane queue vs the single-producer queue (stream 64 B msgs/s):",
		"    " + vs("shmq-lanes"; "shmq-zc"; "stream"; 64; 0.95),
		"  fan-in 64 B, \($d.options.producers // 4) producers -> 1 consumer (msgs/s of all; no target: ratios only):",
		(([$d.rows[] | ok | select(.workload == "fanin" and .size == 64) | .mechanism
		   | select(startswith("shmq") | not)] | unique) as $o
		 | if ($o | length) == 0 then "    n/a      no fanin rows in this run"
		   else ($o[] as $m | ratio(r("shmq-lanes"; "fanin"; 64); r($m; "fanin"; 64)) as $x
			 | "    ratio    shmq-lanes / \($m): \($x | f2)x") end),
		"  other shared-memory libraries (stream 64 B msgs/s, ping-pong 64 B):",
		(([$d.rows[] | ok | .mechanism | select(test("iceoryx|iox|boost"))] | unique) as $libs
		 | if ($libs | length) == 0 then "    n/a      no iceoryx or Boost.Interprocess rows in this run"
		   else ($libs[] as $o | ("stream", "pingpong") as $w | "    " + vs("shmq-zc"; $o; $w; 64; 1)) end),
		""' "$g"
done
# The lane ratios of every guest round (tests/guest/bench.sh keeps each
# round's JSON in DIR/KVER/round-N.json), not only of the median round.
for g in "${guests[@]}"; do
	kver=$(basename "$g" .json); kver=${kver#guest-}
	rounds=("$dir/$kver"/round-*.json)
	[ ${#rounds[@]} -gt 0 ] || continue
	echo "Lane ratios of every round, $kver guest (64 B, msgs/s; > 1: shmq-lanes wins):"
	for f in $(printf '%s\n' "${rounds[@]}" | sort -V); do
		jq -r --arg n "$(basename "$f" .json)" "$lib"'"  \($n): " + lanes_line(.)' "$f"
	done
	echo
done
if [ -r "$dir/native.json" ]; then
	nat=$(jq -r "$lib"' "\(.host.kernel), \(.host.cpus) CPUs, \([.rows[] | ok] | length) rows verified"' "$dir/native.json")
	echo "Native reference: $nat ($dir/native.txt)"
fi
echo "ratios of shmq to every other mechanism: $dir/ratios.csv"
