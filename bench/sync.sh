#!/usr/bin/env bash
# bench/sync.sh — issue 4's sync benchmark: preau vs `rclone copy` (its
# default, 4 transfers, and --transfers 1) sending the same files to the
# same WebDAV server (rclone serve webdav) over an emulated rural uplink
# (2 Mbit/s, 300 ms RTT, 1 % loss, 96 KiB modem buffer) with the same link
# cuts, while a ping train plays a teacher's call. Needs root (network
# namespaces, TUN) and rclone. Prints a table: wall time, goodput, bytes on
# the wire per payload byte, files re-sent, files wrong on the server, RTT
# inflation of the ping train (median, p90).
#
# Knobs (environment): PREAU_BENCH_SMALL (40 files of 20–500 KB),
# PREAU_BENCH_BIG (1 file of 8 MB), PREAU_BENCH_CUTS (3 cuts of 5 s),
# PREAU_BENCH_WORKERS (preau's sync.workers; default the box's),
# PREAU_BENCH_SEED (replays the sizes), PREAU_BENCH_TRACE=1 (the budget's
# rate and queueing delay every second).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "bench-sync: needs root (network namespaces and a TUN device)" >&2
  exit 1
fi
command -v rclone >/dev/null || { echo "bench-sync: rclone is not installed (apt install rclone)" >&2; exit 1; }
PREAU_BENCH_SYNC=1 exec go test -tags sqlite_fts5 -buildvcs=false -count=1 -timeout 60m \
  -run '^TestBenchSync$' -v ./sync | grep -v '^\s*time='
