#!/usr/bin/env bash
# make.sh - rebuild every archive in tests/data/updates/ from scratch with real tools.
#
#   app-v1..v4.docker.tar   one image in four versions (buildah bud, buildah push docker-archive:)
#   app-v2.oci.tar          v2 again as an OCI archive (gzip layers)
#   fleet-base-1.oci.tar    the OLD base image of the fleet     (skopeo copy, uncompressed OCI layers)
#   fleet-base-2.oci.tar    the CURRENT base image of the fleet (skopeo copy, uncompressed OCI layers)
#   svc-a.oci.tar, svc-b.oci.tar   FROM fleet-base:2 + one layer each, with base annotations
#   svc-c.oci.tar           FROM fleet-base:1 (older base) + one layer
#   multi.docker.tar        svc-a and svc-d in ONE docker-archive (podman save -m)
#   expected.json           recomputed by expected.py from the archives themselves
#
# Requirements (Debian 12, root): apt-get install buildah podman skopeo python3
# Determinism: every file is generated from fixed seeds, every build uses
# --timestamp $EPOCH (image "created" AND every file mtime in every layer), so a
# layer whose files did not change keeps its diff_id from version to version.
# Usage: tests/data/updates/make.sh [OUTDIR]   (default: the folder of this script)
#   SCRATCH=/some/dir   keep the build storage and contexts there (default: a temp dir)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(realpath -m "${1:-$HERE}")
EPOCH=${SOURCE_DATE_EPOCH:-1704067200}          # 2024-01-01T00:00:00Z
SCRATCH=${SCRATCH:-$(mktemp -d /tmp/updates-fixtures.XXXXXX)}
SCRATCH=$(realpath -m "$SCRATCH")
ST=$SCRATCH/storage; RUNROOT=$SCRATCH/runroot; CTX=$SCRATCH/ctx
# vfs: works everywhere (no overlay mount needed); the images are tiny
STORE=(--root "$ST" --runroot "$RUNROOT" --storage-driver vfs)
B=(buildah "${STORE[@]}")
P=(podman "${STORE[@]}")
BUD=("${B[@]}" bud --layers --no-cache --pull=never --timestamp "$EPOCH" --isolation chroot)

mkdir -p "$OUT" "$CTX"
echo "buildah: $(buildah --version)"; echo "podman:  $(podman --version)"; echo "skopeo:  $(skopeo --version)"
echo "scratch: $SCRATCH   out: $OUT   epoch: $EPOCH"

# ---------------------------------------------------------------- payload files
# Deterministic bytes: sha256 counter stream from a seed ("binary-like", does not compress).
python3 - "$CTX" <<'PY'
import hashlib, os, sys
ctx = sys.argv[1]

def blob(seed, size):
    out = bytearray(); i = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest(); i += 1
    return bytes(out[:size])

def put(path, data):
    path = os.path.join(ctx, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

base = {"base/etc/os-release": 'NAME="Fixture OS"\nVERSION_ID="1"\nID=fixture\n',
        "base/lib/libc-fixture.so.1": blob("base-libc", 64 * 1024),
        "base/lib/libm-fixture.so.1": blob("base-libm", 24 * 1024),
        "base/share/zoneinfo.bin": blob("base-zone", 12 * 1024 - 1024)}
deps1 = {"deps/lib/libdep-a.so": blob("dep-a", 40 * 1024),
         "deps/lib/libdep-b.so": blob("dep-b", 20 * 1024),
         "deps/MANIFEST": "dep-a 1.0\ndep-b 1.0\n"}
deps3 = dict(deps1)                                   # v3: one NEW file, one changed line
deps3["deps/lib/libdep-c.so"] = blob("dep-c", 8 * 1024)
deps3["deps/MANIFEST"] = "dep-a 1.0\ndep-b 1.0\ndep-c 1.0\n"
binary = blob("app-server", 80 * 1024)                # same bytes in every version

for v in (1, 2, 3, 4):
    d = f"app-v{v}"
    for p, data in base.items():
        put(f"{d}/{p}", data)
    for p, data in (deps1 if v < 3 else deps3).items():
        put(f"{d}/{p}", data)
    put(f"{d}/app/bin/server", binary)
    put(f"{d}/app/config.yaml",
        f"# app configuration, release {v}\nversion: 1.0.{v}\nlisten: 0.0.0.0:80{v:02d}\n"
        f"workers: {v * 2}\nfeature_flags: [{', '.join('f%d' % i for i in range(v))}]\n")
    put(f"{d}/VERSION", f"1.0.{v}\n")

# fleet: base = "os" + "runtime"; runtime differs between base 1 (old) and base 2
osfiles = {"os/etc/os-release": 'NAME="Fleet OS"\nID=fleetos\n',
           "os/lib/libfleet.so.1": blob("fleet-os-lib", 72 * 1024),
           "os/bin/sh-fixture": blob("fleet-os-sh", 16 * 1024)}
for b in (1, 2):
    d = f"fleet-base-{b}"
    for p, data in osfiles.items():
        put(f"{d}/{p}", data)
    put(f"{d}/runtime/lib/libruntime.so", blob(f"runtime-{b}", (28 + 8 * b) * 1024))  # 36 KB, 44 KB
    put(f"{d}/runtime/VERSION", f"runtime {b}.0\n")
for s, kb in (("a", 16), ("b", 24), ("c", 20), ("d", 12)):   # distinct sizes per service
    d = f"svc-{s}"
    put(f"{d}/svc-{s}/bin/svc-{s}", blob(f"svc-{s}", kb * 1024))
    put(f"{d}/svc-{s}/config.yaml", f"service: svc-{s}\nport: 90{ord(s) - 96:02d}\n")
PY
# source mtimes fixed too (buildah clamps them with --timestamp anyway)
find "$CTX" -exec touch -h -d "@$EPOCH" {} +
find "$CTX" -type f -exec chmod 0644 {} +; find "$CTX" -type f -path '*/bin/*' -exec chmod 0755 {} +
find "$CTX" -type d -exec chmod 0755 {} +

# ---------------------------------------------------------------- 1. the app series
for v in 1 2 3 4; do
  cat > "$CTX/app-v$v/Containerfile" <<CF
FROM scratch
COPY base /base
COPY deps /deps
COPY app /app
COPY VERSION /VERSION
LABEL org.opencontainers.image.title=app org.opencontainers.image.version=1.0.$v
CMD ["/app/bin/server", "--config", "/app/config.yaml"]
CF
  "${B[@]}" rmi -f "localhost/app:v$v" >/dev/null 2>&1 || true
  "${BUD[@]}" -f "$CTX/app-v$v/Containerfile" -t "localhost/app:v$v" "$CTX/app-v$v"
  rm -f "$OUT/app-v$v.docker.tar"
  "${B[@]}" push -q "localhost/app:v$v" "docker-archive:$OUT/app-v$v.docker.tar:localhost/app:v$v"
done
rm -f "$OUT/app-v2.oci.tar"
"${B[@]}" push -q "localhost/app:v2" "oci-archive:$OUT/app-v2.oci.tar:localhost/app:v2"

# ---------------------------------------------------------------- 2. the fleet
# The fleet's OCI archives keep UNCOMPRESSED layers (blob = the layer tar, digest = diff_id), so
# a layer has the same blob_size in every archive of the fleet, OCI or docker-archive alike.
# (`buildah push --disable-compression` still wrote gzip layers with buildah 1.28; skopeo's
# --dest-oci-accept-uncompressed-layers does keep them uncompressed.)
oci_plain() {  # oci_plain IMAGE ARCHIVE
  rm -f "$2"
  skopeo copy -q --dest-oci-accept-uncompressed-layers \
      "containers-storage:[vfs@$ST+$RUNROOT]$1" "oci-archive:$2:$1"
}
for b in 1 2; do
  cat > "$CTX/fleet-base-$b/Containerfile" <<CF
FROM scratch
COPY os /os
COPY runtime /runtime
LABEL org.opencontainers.image.title=fleet-base org.opencontainers.image.version=$b
CF
  "${B[@]}" rmi -f "localhost/fleet-base:$b" >/dev/null 2>&1 || true
  "${BUD[@]}" -f "$CTX/fleet-base-$b/Containerfile" -t "localhost/fleet-base:$b" "$CTX/fleet-base-$b"
  rm -f "$OUT/fleet-base-$b.oci.tar"
  oci_plain "localhost/fleet-base:$b" "$OUT/fleet-base-$b.oci.tar"
done
# the manifest digest of the published base (the oci-archive's manifest), for the annotation
base_digest() {
  python3 - "$1" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    idx = json.load(t.extractfile("index.json"))
print(idx["manifests"][0]["digest"])
PY
}
BASE1_DIGEST=$(base_digest "$OUT/fleet-base-1.oci.tar")
BASE2_DIGEST=$(base_digest "$OUT/fleet-base-2.oci.tar")

svc() {  # svc NAME BASE_NUMBER BASE_DIGEST
  local s=$1 b=$2 digest=$3
  cat > "$CTX/svc-$s/Containerfile" <<CF
FROM localhost/fleet-base:$b
COPY svc-$s /srv/svc-$s
LABEL org.opencontainers.image.title=svc-$s
CMD ["/srv/svc-$s/bin/svc-$s"]
CF
  "${B[@]}" rmi -f "localhost/svc-$s:latest" >/dev/null 2>&1 || true
  "${BUD[@]}" --annotation "org.opencontainers.image.base.name=localhost/fleet-base:$b" \
      --annotation "org.opencontainers.image.base.digest=$digest" \
      -f "$CTX/svc-$s/Containerfile" -t "localhost/svc-$s:latest" "$CTX/svc-$s"
}
svc a 2 "$BASE2_DIGEST"
svc b 2 "$BASE2_DIGEST"
svc c 1 "$BASE1_DIGEST"
svc d 2 "$BASE2_DIGEST"
for s in a b c; do
  rm -f "$OUT/svc-$s.oci.tar"
  oci_plain "localhost/svc-$s:latest" "$OUT/svc-$s.oci.tar"
done
# two images in one docker-archive: containers/image's multi-image writer via podman save -m
rm -f "$OUT/multi.docker.tar"
"${P[@]}" save -m --format docker-archive -o "$OUT/multi.docker.tar" \
    localhost/svc-a:latest localhost/svc-d:latest

# ---------------------------------------------------------------- 3. expected figures
python3 "$HERE/expected.py" "$OUT" > "$OUT/expected.json"
ls -l "$OUT"/*.tar "$OUT/expected.json"
