#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test, and ends with one
# "N passed, N failed" line. Numeric targets are compiled optimised even in this debug build
# (see Package.swift). All tests are XCTest, so the Swift Testing runner is switched off.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh --slurm
swift build --build-tests
log=$(mktemp)
# The Slurm executor's tests run against a real one-node cluster, started here and stopped by
# pid at the end (RRMD_TEST_SLURM tells the tests where it is).
slurm=$(mktemp -d /tmp/rrmd-slurm.XXXXXX)
trap 'bash Scripts/slurm_cluster.sh stop "$slurm" >/dev/null 2>&1 || true; rm -rf "$log" "$slurm"' EXIT
bash Scripts/slurm_cluster.sh start "$slurm" >/dev/null
export RRMD_TEST_SLURM=$slurm SLURM_CONF=$slurm/slurm.conf
status=0
swift test --skip-build --disable-swift-testing 2>&1 | tee "$log" || status=$?
# XCTest's last line: "Executed N tests, with [S tests skipped and] F failures ...".
summary=$(grep -E "Executed [0-9]+ tests?, with " "$log" | tail -n 1 || true)
if [ -z "$summary" ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
total=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
failed=$(sed -E 's/.* ([0-9]+) failures?.*/\1/' <<<"$summary")
skipped=0
if grep -qE "[0-9]+ tests? skipped" <<<"$summary"; then
  skipped=$(sed -E 's/.* ([0-9]+) tests? skipped.*/\1/' <<<"$summary")
fi
echo "$((total - failed - skipped)) passed, $skipped skipped, $failed failed"
exit "$status"
