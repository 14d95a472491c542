#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test.
# Numeric targets are compiled optimised even in this debug build (see Package.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build --build-tests
swift test --skip-build
