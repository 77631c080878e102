# merge.jq: one shmq-bench JSON from the JSON of several complete rounds
# (jq -s -f merge.jq round-1.json round-2.json ...; tests/guest/bench.sh).
# One row per cell: the median round by the row's main figure (round-trip
# median, or messages/s; of an even count, the worse of the middle two),
# "rounds" the number of rounds, "repeats" the runs of every round that
# measured the cell, and "spread" over those runs: every run's figure in
# round order, their min and max, the median the merged row's figure. A
# cell that failed in some rounds keeps the median of the others and says
# so in its note.
length as $n
| (map(.rows) | add) as $all
| .[0] + {rounds: $n, rows: [.[0].rows[] as $k
	| [$all[] | select(.mechanism == $k.mechanism and .workload == $k.workload and .size == $k.size)] as $rs
	| [$rs[] | select(.status == "ok")] as $ok
	| [$rs[] | select(.status == "failed")] as $bad
	| if ($ok | length) == 0 then ($bad + $rs)[0]
	  else ($ok | sort_by(if .workload == "pingpong" then .rtt_median_us else -.msgs_per_s end)) as $s
		| $s[($s | length) / 2 | floor]
		| ([$ok[] | (.spread.runs // [if .workload == "pingpong" then .rtt_median_us else .msgs_per_s end])[]]) as $runs
		| .repeats = ($runs | length)
		| .spread = {metric: (if .workload == "pingpong" then "rtt_median_us" else "msgs_per_s" end),
			     runs: $runs, min: ($runs | min), max: ($runs | max),
			     median: (if .workload == "pingpong" then .rtt_median_us else .msgs_per_s end)}
		| if ($bad | length) > 0 then .note = ("failed in \($bad | length) of \($n) rounds (\($bad[0].note))" + (if .note == "" then "" else "; " + .note end)) else . end
	  end]}
