#!/usr/bin/env bash
# Runs INSIDE a fresh network + mount namespace (see glibc.test.ts, which calls
# `unshare --net --mount bash netns-getent.sh DIR`), so port 53 and
# /etc/resolv.conf are ours alone and nothing reaches the machine's network.
#
# glibc's stub resolver only talks to port 53 of the nameservers in
# /etc/resolv.conf; here that is eipdns, started from the built CLI with
# DIR/eipdns.yaml (listening on 127.0.0.1:53). Then getent resolves through
# the real getaddrinfo()/NSS path and its output goes to stdout between markers.
set -euo pipefail

dir=$1
root=$(cd "$(dirname "$0")/../.." && pwd)

# Mounts made from here on stay in this namespace.
mount --make-rprivate /
ip link set lo up
# getaddrinfo() with AI_ADDRCONFIG (getent ahosts*) sends no A query unless
# the host has an IPv4 address other than 127.0.0.1, nor AAAA without an IPv6
# address other than ::1. Give this namespace's lo one of each; nothing is
# sent to them (the nameserver is 127.0.0.1).
ip addr add 127.0.0.53/32 dev lo
ip -6 addr add fd00:e1d:d25::53/128 dev lo nodad 2>/dev/null || echo "note: no IPv6 in this namespace; AAAA is not asked" >&2

printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' >"$dir/resolv.conf"
mount --bind "$dir/resolv.conf" /etc/resolv.conf
# Plain files+dns, whatever the host uses (e.g. nss-resolve would ask
# systemd-resolved over D-Bus, bypassing this namespace's resolv.conf).
printf 'hosts: files dns\n' >"$dir/nsswitch.conf"
mount --bind "$dir/nsswitch.conf" /etc/nsswitch.conf
# A running nscd would answer from the host's cache and resolver.
for d in /run/nscd /var/run/nscd /var/cache/nscd; do
  if [[ -d $d ]]; then mount -t tmpfs tmpfs "$d"; fi
done

node "$root/bin/eipdns.js" serve --config "$dir/eipdns.yaml" >"$dir/eipdns.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

ready=""
for _ in $(seq 1 100); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "eipdns exited early:" >&2
    cat "$dir/eipdns.log" >&2
    exit 3
  fi
  # dig +short prints its errors on stdout too: wait for an actual address.
  if dig +short +time=1 +tries=1 @127.0.0.1 db.internal A 2>/dev/null | grep -E '^[0-9]+(\.[0-9]+){3}$' >/dev/null; then
    ready=yes
    break
  fi
  sleep 0.1
done
if [[ -z $ready ]]; then
  echo "eipdns did not answer db.internal on 127.0.0.1:53 within 10 s:" >&2
  cat "$dir/eipdns.log" >&2
  exit 4
fi

echo "--- ahostsv4 db.internal"
getent ahostsv4 db.internal || echo "exit $?"
echo "--- ahosts db.internal"
getent ahosts db.internal || echo "exit $?"
echo "--- hosts cache.internal"
getent hosts cache.internal || echo "exit $?"
echo "--- ahostsv4 nope.internal"
getent ahostsv4 nope.internal || echo "exit $?"
echo "--- end"
