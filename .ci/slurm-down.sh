#!/usr/bin/env bash
# Stops what .ci/slurm-up.sh started: slurmd and slurmctld (by the pid files its slurm.conf names) and munged when
# slurm-up started it. Leaves the packages and the generated slurm.conf.
set -uo pipefail

for pidfile in /run/esd-slurmd.pid /run/esd-slurmctld.pid /run/esd-munged.pid; do
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$pidfile"
done
echo "slurm-down: stopped"
