# parse-run.awk: judges one test run from its report (the guest's ttyS1, or
# the native tests' output framed the same way), see tests/guest/init.
#   awk -v plan="root member outsider" -v gates="insmod udev rmmod dmesg taint" \
#       -v boot=PASS|"FAIL reason" -f parse-run.awk result.txt
# plan:  suites that must have run;  gates: health gates that must report;
# boot:  the host's verdict on the boot itself (empty: not a guest run).
# Every test of gtest counts as one test, every gate as one test, the boot as
# one test; a suite that crashed, hung or ran no test counts as one failure.
# Output lines:
#   COUNT <passed> <failed> <skipped>
#   FAIL <what>                   one per failure
#   EXCERPT <text>                evidence for the failures (gtest messages,
#                                 gate details), bounded in size
function trim(s) { sub(/^[ \t\r]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
function fail(what) { failed++; fails[++nf] = what }
function excerpt(s) { if (nx < 400) ex[++nx] = s; else if (nx == 400) ex[++nx] = "... (more in the full log)" }
function close_suite(how,   k) {
	# how: "" (END seen) or the reason the suite did not end
	if (how != "") {
		fail(suite ": " how (running != "" ? " (test running: " running ")" : ""))
		if (running != "") for (k = 1; k <= nbuf; k++) excerpt(suite "| " buf[k])
	}
	insuite = 0; running = ""; nbuf = 0
}
BEGIN {
	np = split(plan, planned, " ")
	ng = split(gates, wanted, " ")
	passed = failed = skipped = 0; nf = nx = 0
}
{ sub(/\r$/, "") }
/^@@SHMQ BEGIN / {
	if (insuite) close_suite("did not finish")
	suite = $3; insuite = 1; began[suite] = 1; ran[suite] = 0; sfailed[suite] = 0
	running = ""; nbuf = 0
	next
}
/^@@SHMQ END / {
	if (!insuite || $3 != suite) next
	ended[suite] = 1
	rc = $4; sub(/^rc=/, "", rc)
	if (rc != 0 && sfailed[suite] == 0)
		close_suite("exited with status " rc (rc == 137 ? " (killed: in-guest timeout?)" : rc > 128 ? " (signal " rc - 128 ")" : ""))
	else if (rc == 0 && ran[suite] == 0)
		close_suite("no test ran (filter matched nothing?)")
	else
		close_suite("")
	next
}
/^@@SHMQ GATE / {
	g = $3; v = $4; d = $0; sub(/^@@SHMQ GATE [^ ]+ [^ ]+ ?/, "", d)
	seen[g] = 1
	if (v == "PASS") passed++
	else if (v == "FAIL") { fail("gate " g ": " d); gatefail[g] = 1 }
	next
}
/^@@SHMQ DETAIL / {
	g = $3; d = $0; sub(/^@@SHMQ DETAIL [^ ]+ ?/, "", d)
	if (gatefail[g]) excerpt(g "| " d)
	next
}
/^@@SHMQ DONE/ { done = 1; next }
/^@@SHMQ / { next }
insuite && /^\[ RUN      \] / {
	running = trim(substr($0, 14)); nbuf = 0
	next
}
insuite && /^\[       OK \] / {
	n = trim(substr($0, 14)); sub(/ \([0-9]+ ms\)$/, "", n)
	if (!((suite, n) in okd)) { okd[suite, n] = 1; passed++; ran[suite]++ }
	running = ""; nbuf = 0
	next
}
insuite && /^\[  SKIPPED \] / {
	n = trim(substr($0, 14))
	if (n ~ /^[0-9]+ tests?,/) next
	sub(/ \([0-9]+ ms\)$/, "", n)
	if (!((suite, n) in skd)) { skd[suite, n] = 1; skipped++; ran[suite]++ }
	running = ""; nbuf = 0
	next
}
insuite && /^\[  FAILED  \] / {
	n = trim(substr($0, 14))
	if (n ~ /^[0-9]+ tests?, listed below/) next
	sub(/ \([0-9]+ ms\)$/, "", n); split(n, w, /[, ]/); n = w[1]
	if (!((suite, n) in fld)) {
		fld[suite, n] = 1; fail(suite ": " n); sfailed[suite]++; ran[suite]++
		for (k = 1; k <= nbuf && k <= 40; k++) excerpt(suite "| " buf[k])
		if (nbuf > 40) excerpt(suite "| ... (" nbuf - 40 " more lines)")
	}
	running = ""; nbuf = 0
	next
}
insuite { if (nbuf < 200) buf[++nbuf] = $0; next }
END {
	if (insuite) close_suite("did not finish")
	for (i = 1; i <= np; i++)
		if (!(planned[i] in began)) fail(planned[i] ": did not run")
	for (i = 1; i <= ng; i++)
		if (!(wanted[i] in seen)) fail("gate " wanted[i] ": no verdict (guest stopped early)")
	if (boot != "") {
		if (boot == "PASS" && !done) boot = "FAIL init did not report DONE"
		if (boot == "PASS") passed++
		else { b = boot; sub(/^FAIL ?/, "", b); fail("boot: " b) }
	}
	print "COUNT", passed, failed, skipped
	for (i = 1; i <= nf; i++) print "FAIL", fails[i]
	for (i = 1; i <= nx; i++) print "EXCERPT", ex[i]
}
