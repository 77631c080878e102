#!/usr/bin/env bash
# chart.sh DIR [OUT.png [GUEST.json]]: the chart of `make bench` (gnuplot,
# package gnuplot-nox) from the shmq-bench JSON files in DIR: GUEST.json or
# the first guest-*.json
# (the guest run with the module: every mechanism in one run) and, if there,
# native.json (this machine without the module: the reference for what
# emulation distorts). Default output DIR/chart.png. Three panels:
#   1. streaming 64 B, messages/s per mechanism, guest and native (log scale)
#   2. ping-pong 64 B, round-trip median per mechanism, guest and native (log)
#   3. how many times faster shmq-zc is than each mechanism, per message size,
#      streaming, in the guest run (log scale; > 1: shmq wins)
set -euo pipefail
dir=${1:?usage: chart.sh DIR [OUT.png [GUEST.json]]}
png=${2:-$dir/chart.png}
command -v gnuplot >/dev/null || { echo "chart: gnuplot missing (apt-get install gnuplot-nox)" >&2; exit 1; }
shopt -s nullglob
guests=("$dir"/guest-*.json)
[ ${#guests[@]} -gt 0 ] || { echo "chart: no $dir/guest-*.json (make bench-guest)" >&2; exit 1; }
guest=${3:-${guests[0]}}
native=$dir/native.json
[ -r "$native" ] || native=''
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one line per mechanism of the guest run (its order): name guest native
# ("-" where a value is missing: gnuplot leaves the bar out)
per_mech() { # WORKLOAD SIZE FIELD
	local nat='{"rows": []}'
	[ -n "$native" ] && nat=$(cat "$native")
	jq -r --arg w "$1" --argjson s "$2" --arg f "$3" --argjson nat "$nat" '
		def v($d; $m): first($d.rows[] | select(.status == "ok" and .mechanism == $m
			and .workload == $w and .size == $s) | .[$f]) // "-";
		. as $g
		| [.rows[] | select(.workload == $w and .size == $s) | .mechanism] as $ms
		| $ms[] | "\(.) \(v($g; .)) \(v($nat; .))"' "$guest"
}
per_mech stream 64 msgs_per_s >"$tmp/stream64"
per_mech pingpong 64 rtt_median_us >"$tmp/pp64"
# shmq-zc's advantage per mechanism (rows) and size (columns), stream
jq -r '
	def row($m; $s): first(.rows[] | select(.status == "ok" and .mechanism == $m
		and .workload == "stream" and .size == $s)) // null;
	. as $d
	| ([.rows[] | select(.workload == "stream") | .size] | unique) as $sizes
	| ([.rows[] | select(.workload == "stream" and .mechanism != "shmq-zc") | .mechanism]
	   | reduce .[] as $m ([]; if index([$m]) then . else . + [$m] end)) as $ms
	| ("mechanism " + ($sizes | map(if . >= 1048576 then "\(. / 1048576)MiB"
		elif . >= 1024 then "\(. / 1024)KiB" else "\(.)B" end) | join(" "))),
	  ($ms[] as $m | $m + " " + ($sizes | map(. as $s | $d | row("shmq-zc"; $s) as $z
		| row($m; $s) as $o
		| if $z == null or $o == null or $o.msgs_per_s <= 0 then "-"
		  else ($z.msgs_per_s / $o.msgs_per_s | tostring) end) | join(" ")))' \
	"$guest" >"$tmp/adv"
ncols=$(head -n1 "$tmp/adv" | wc -w)
gk=$(jq -r '"guest \(.host.kernel), \(.host.cpus) vCPUs (TCG)"' "$guest")
nk=''
[ -n "$native" ] && nk=$(jq -r '"native \(.host.kernel), \(.host.cpus) CPUs, no module"' "$native")

cat >"$tmp/plot.gp" <<EOF
set terminal pngcairo size 1500,1000 font "sans,10"
set output "$png"
set datafile missing "-"
set style data histograms
set style fill solid 0.85 border -1
set boxwidth 0.85
set grid ytics
set logscale y
set xtics rotate by -35 nomirror
set key top right
set multiplot layout 2,2 title "shmq-bench: $gk" . ("$nk" ne "" ? "  |  $nk" : "")
set style histogram clustered gap 1
set key top left opaque
set title "streaming 64 B: messages/s (log; higher is better)"
plot "$tmp/stream64" using 2:xtic(1) title "guest (module)" lc rgb "#1f77b4", \
     "" using 3 title "native (no module)" lc rgb "#aaaaaa"
set title "ping-pong 64 B: round-trip median, us (log; lower is better)"
plot "$tmp/pp64" using 2:xtic(1) title "guest (module)" lc rgb "#d62728", \
     "" using 3 title "native (no module)" lc rgb "#aaaaaa"
set multiplot next
set size 1,0.5
set origin 0,0
set title "guest, streaming: how many times more messages/s shmq-zc moves than each mechanism (log; > 1: shmq wins)"
set key top left horizontal reverse Left width 1
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lc rgb "black" dt 2 front
plot for [c=2:$ncols] "$tmp/adv" using c:xtic(1) title columnhead(c)
unset multiplot
EOF
gnuplot "$tmp/plot.gp"
echo "chart: $png"
