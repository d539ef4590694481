#!/usr/bin/env bash
# Regenerates everything in bench/: the benchmark results, the generation
# timings, the results section of README.md and chart.svg.
#
#   ./run.sh            full run: -count 10, -benchtime 1s (about 25 minutes on 2 cores)
#   COUNT=2 BENCHTIME=200ms ./run.sh   quick run while developing
#
# Needs: go, benchstat (go install golang.org/x/perf/cmd/benchstat@latest),
# mockgen (go install go.uber.org/mock/mockgen@latest); gowrap is timed
# and compared only when it is on PATH.
set -euo pipefail
cd "$(dirname "$0")"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
COUNT=${COUNT:-10}
BENCHTIME=${BENCHTIME:-1s}
GENRUNS=${GENRUNS:-5}
mkdir -p results

# Regenerate the wrapper under test with the repository's purgatorygen.
go generate ./...
go vet ./...
go test -count=1 ./...

# The benchmarks. Serial scenarios at GOMAXPROCS=1, the parallel ones at 1 and 2.
serial='^Benchmark(ClosedSuccess|OpenReject|HalfOpenReject|Mixed|Alternating|RateWindow)$'
parallel='^Benchmark(ClosedSuccessParallel|RateWindowParallel)$'
{
	go test -run '^$' -bench "$serial" -benchmem -count "$COUNT" -benchtime "$BENCHTIME" -cpu 1 .
	go test -run '^$' -bench "$parallel" -benchmem -count "$COUNT" -benchtime "$BENCHTIME" -cpu 1,2 .
} | tee results/bench.txt

# benchstat tables, one per scenario.
{
	echo "#### benchstat"
	echo
	echo '```'
	for s in ClosedSuccess ClosedSuccessParallel OpenReject HalfOpenReject Mixed Alternating RateWindow RateWindowParallel; do
		benchstat -filter ".name:$s" results/bench.txt
		echo
	done
	echo '```'
} > results/benchstat.md

# Generation timing.
{
	echo "### Generation time"
	echo
	go run ./cmd/gentime -runs "$GENRUNS"
} | tee results/gentime.md

# The machine and the exact commands.
{
	echo "### Machine"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- cores: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//;s/ *$//') ($(grep -m1 '^cpu:' results/bench.txt | cut -d: -f2 | sed 's/^ *//;s/ *$//'))"
	echo "- $(go version)"
	echo "- load average (1, 5, 15 min) when the run started: $LOAD_START; when it ended: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- commands: \`go test -run '^\$' -bench '$serial' -benchmem -count $COUNT -benchtime $BENCHTIME -cpu 1 .\` and"
	echo "  \`go test -run '^\$' -bench '$parallel' -benchmem -count $COUNT -benchtime $BENCHTIME -cpu 1,2 .\`; \`go run ./cmd/gentime -runs $GENRUNS\`"
} > results/machine.md

go run ./cmd/report -bench results/bench.txt -readme README.md -svg chart.svg \
	-include results/machine.md,results/gentime.md,results/benchstat.md
echo "run.sh: wrote README.md, chart.svg and results/"
