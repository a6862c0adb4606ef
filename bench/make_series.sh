#!/usr/bin/env bash
# make_series.sh - N versions of the big benchmark image, for `layer-explorer updates`.
#
# Input: the docker-archive of the realistic benchmark image, make-big-image.sh's (a Debian bookworm
# image, 6 filesystem layers, ~640 MB uncompressed; default bench/out/big.docker.tar).
# Output: $OUT/big-vNN.docker.tar, NN = 01..N (docker-archive, uncompressed layers, written by
# `buildah push docker-archive:`), plus $OUT/series.json (layers and download figures read
# back from the archives' manifests and configs).
#
# Every version = the 6 layers of the big image, unchanged (same diff_ids), plus two layers:
#   layer 6  COPY assets /srv/assets        ASSETS_MB (default 32) of generated files, the same
#                                           bytes in every version except ONE small file,
#                                           /srv/assets/build-info.txt (a big layer re-downloaded
#                                           for a tiny change: the "split this layer" case);
#                                           ASSETS_MB=0 leaves this layer out
#   layer 7  COPY version.txt /srv/version.txt   one small file, new in every version
# Timestamps: version NN is built with `buildah bud --timestamp EPOCH+NN*86400` (one day apart,
# so the configs' "created" go up with the version; the clamped mtimes are inside the new
# layers only, which change anyway). The base layers are taken from the archive as they are.
#
# Requirements (Debian 12, root): apt-get install buildah python3; ~7 GB free in $OUT for
# N=10 (each archive holds every layer: ~640 MB + ASSETS_MB). Uses its own buildah storage
# ($SCRATCH/storage, overlay driver), never the machine's default one.
# Usage: bench/make_series.sh [N]     env: SRC OUT SCRATCH ASSETS_MB SOURCE_DATE_EPOCH
set -euo pipefail

N=${1:-${N:-10}}
SRC=$(realpath "${SRC:-bench/out/big.docker.tar}")
OUT=$(realpath -m "${OUT:-bench/out/series}")
SCRATCH=$(realpath -m "${SCRATCH:-bench/out/series-scratch}")
ASSETS_MB=${ASSETS_MB:-32}
EPOCH=${SOURCE_DATE_EPOCH:-1704067200}          # 2024-01-01T00:00:00Z, as make-big-image.sh
B=(buildah --root "$SCRATCH/storage" --runroot "$SCRATCH/runroot" --storage-driver overlay)
BASE=localhost/big-series-base:latest

mkdir -p "$OUT" "$SCRATCH/ctx"
need=$(( N * ( $(stat -c %s "$SRC") / 1048576 + ASSETS_MB + 8 ) ))
free=$(df -Pm "$OUT" | awk 'NR==2 {print $4}')
echo "buildah: $(buildah --version); source: $SRC; out: $OUT; versions: $N; need ~${need} MB, free ${free} MB"
[ "$free" -gt "$need" ] || { echo "not enough space in $OUT (need ~${need} MB); try a smaller N" >&2; exit 3; }

T0=$(date +%s)
# 1. the big image into this script's own storage (once)
if ! "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  id=$("${B[@]}" pull -q "docker-archive:$SRC")
  "${B[@]}" tag "$id" "$BASE"
fi
echo "base imported in $(( $(date +%s) - T0 )) s"

# 2. the shared assets payload (deterministic bytes), version files, Containerfile
python3 - "$SCRATCH/ctx" "$ASSETS_MB" "$N" "$EPOCH" <<'PY'
import os, random, sys
ctx, mb, n, epoch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for v in range(1, n + 1):
    d = os.path.join(ctx, "v%02d" % v)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "version.txt"), "w") as f:
        f.write("big-series version %d\n" % v)
    if mb:
        a = os.path.join(d, "assets")
        if not os.path.isdir(a):
            rnd = random.Random(20240101)                      # same bytes in every version
            for i in range(mb * 8):                            # 128 KB files
                sub = os.path.join(a, "pack%02d" % (i % 16))
                os.makedirs(sub, exist_ok=True)
                with open(os.path.join(sub, "asset%04d.bin" % i), "wb") as f:
                    f.write(rnd.randbytes(128 * 1024))
        with open(os.path.join(a, "build-info.txt"), "w") as f:  # the one file that changes
            f.write("build %d\ncommit %040x\n" % (v, v))
    with open(os.path.join(d, "Containerfile"), "w") as f:
        f.write("FROM localhost/big-series-base:latest\n"
                + ("COPY assets /srv/assets\n" if mb else "")
                + "COPY version.txt /srv/version.txt\n"
                + "LABEL org.opencontainers.image.version=%d\n" % v)
PY
find "$SCRATCH/ctx" -exec touch -h -d "@$EPOCH" {} +

# 3. one version after the other
for v in $(seq 1 "$N"); do
  nn=$(printf %02d "$v"); t=$(date +%s)
  "${B[@]}" rmi -f "localhost/big-series:v$nn" >/dev/null 2>&1 || true
  "${B[@]}" bud -q --layers --pull=never --isolation chroot --timestamp $(( EPOCH + v * 86400 )) \
      -f "$SCRATCH/ctx/v$nn/Containerfile" -t "localhost/big-series:v$nn" "$SCRATCH/ctx/v$nn" >/dev/null
  rm -f "$OUT/big-v$nn.docker.tar"
  "${B[@]}" push -q "localhost/big-series:v$nn" "docker-archive:$OUT/big-v$nn.docker.tar:localhost/big-series:v$nn"
  echo "v$nn: $(stat -c %s "$OUT/big-v$nn.docker.tar") bytes in $(( $(date +%s) - t )) s"
done

# 4. read the figures back from the archives (manifest.json + config + layer member sizes)
python3 - "$OUT" "$N" > "$OUT/series.json" <<'PY'
import hashlib, json, sys, tarfile
out, n = sys.argv[1], int(sys.argv[2])
versions = []
for v in range(1, n + 1):
    path = "%s/big-v%02d.docker.tar" % (out, v)
    with tarfile.open(path) as t:
        members = {m.name: m for m in t.getmembers()}
        man = json.load(t.extractfile("manifest.json"))[0]
        raw = t.extractfile(man["Config"]).read()
        cfg = json.loads(raw)
        layers = [{"diff_id": d, "blob_size": members[p].size, "path_in_archive": p}
                  for p, d in zip(man["Layers"], cfg["rootfs"]["diff_ids"])]
    versions.append({"file": path.rsplit("/", 1)[1], "tags": man.get("RepoTags"), "created": cfg["created"],
                     "config_digest": "sha256:" + hashlib.sha256(raw).hexdigest(), "layers": layers})
steps = []
for old, new in zip(versions, versions[1:]):
    have = {l["diff_id"] for l in old["layers"]}
    dl = sum(l["blob_size"] for l in new["layers"] if l["diff_id"] not in have)
    tot = sum(l["blob_size"] for l in new["layers"])
    steps.append({"from": old["file"], "to": new["file"], "download_bytes": dl, "reused_bytes": tot - dl,
                  "new_layers": [i for i, l in enumerate(new["layers"]) if l["diff_id"] not in have]})
json.dump({"versions": versions, "steps": steps}, sys.stdout, indent=1)
print()
PY
python3 - "$OUT/series.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
first = s["versions"][0]["layers"]
for v in s["versions"]:
    shared = sum(1 for a, b in zip(first, v["layers"]) if a["diff_id"] == b["diff_id"])
    print("%s  %d layers, %d bytes, %d bottom layers shared with v01" % (
        v["file"], len(v["layers"]), sum(l["blob_size"] for l in v["layers"]), shared))
for st in s["steps"]:
    print("%s -> %s  download %d  reused %d  new layers %s" % (
        st["from"], st["to"], st["download_bytes"], st["reused_bytes"], st["new_layers"]))
PY
echo "made $N versions in $(( $(date +%s) - T0 )) s"
