#!/usr/bin/env bash
# The light device agent on aarch64, under qemu user-mode emulation on this x86 host
# (../shared/ARM-EMULATION.md has the trial this follows and every pitfall found).
#
#   sudo benchmarks/arm_check.sh [--no-ray] [--install-only]
#
# 1. an arm64 Debian root filesystem (debootstrap; kept in $ARM_ROOT and reused);
# 2. the light agent installed into it from this checkout: pip install '.[agent]';
# 3. on x86 (the full install, .venv): the digits CNN fp32 and int8 as ONNX and TFLite, and
#    a transformer (a transformers folder built from a config) as ONNX, each with its cell
#    JSON and eval pack; the same cells measured on x86 as the reference;
# 4. in the root: `python -m agents.worker` on every cell, plus every artifact's outputs on
#    the eval pack; then, per artifact: the fingerprint the worker detected, quality and
#    outputs against the x86 run (within the precision's tolerance), timings marked emulated;
# 5. (stretch, skipped with --no-ray) a Ray head on 127.0.0.1 on x86, the root joined as an
#    arm-edge node, and a small sweep through it.
#
# Everything it mounts it unmounts on exit; it stops only the processes it started, by id
# (never `ray stop`: the root shares the host's process table). Needs root, apt and pip
# registries. It does not run in CI: minutes of emulation and kernel state (binfmt, mounts).
# Emulated code runs ~300x slower than native: timings here mean nothing, outputs do.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ARM_ROOT=${ARM_ROOT:-/var/cache/harness-arm/root}
WORK=${ARM_WORK:-$(mktemp -d /tmp/arm-check.XXXXXX)}
PY=${PYTHON:-$REPO/.venv/bin/python}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
RAY=1
INSTALL_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --no-ray) RAY=0 ;;
        --install-only) INSTALL_ONLY=1 ;;   # the root and the light agent, nothing measured
        *) echo "usage: $0 [--no-ray] [--install-only]" >&2; exit 2 ;;
    esac
done
MOUNTED=()
STARTED=()

say() { printf '\n== %s\n' "$*"; }

teardown() {
    local pid point
    for pid in "${STARTED[@]}"; do  # by id, with their process groups
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    [ ${#STARTED[@]} -gt 0 ] && sleep 5
    for pid in "${STARTED[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    for ((i=${#MOUNTED[@]}-1; i>=0; i--)); do
        point=${MOUNTED[i]}
        umount -R "$point" 2>/dev/null || umount -l "$point" 2>/dev/null || true
    done
}
trap teardown EXIT

# The CPU qemu emulates matches the /proc/cpuinfo the root sees (a Neoverse-N1, below).
# With qemu 7.2's default "max" CPU (ARMv8.2 and much later: i8mm, SVE), LiteRT's XNNPACK
# picks int8 kernels whose emulated results are wrong (the digits CNN's int8 TFLite model
# scored 0.14 top-1 against 0.99 on x86), while as a Neoverse-N1 or a Cortex-A76 its outputs
# are identical to x86 (measured with this script, 2026-12-01).
QEMU_CPU_MODEL=${QEMU_CPU_MODEL:-neoverse-n1}
in_root() { chroot "$ARM_ROOT" /usr/bin/env -i HOME=/root PATH=/opt/agent/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 HARNESS_EMULATOR="$EMULATOR, cpu $QEMU_CPU_MODEL" QEMU_CPU="$QEMU_CPU_MODEL" "$@"; }

say "tools"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    MOUNTED+=(/proc/sys/fs/binfmt_misc)
fi
update-binfmts --enable qemu-aarch64 2>/dev/null || true
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64
EMULATOR="qemu-user $(/usr/bin/qemu-aarch64-static --version | head -1 | awk '{print $3}')"
echo "emulator: $EMULATOR (binfmt qemu-aarch64 enabled)"

say "arm64 root filesystem: $ARM_ROOT"
if [ ! -f "$ARM_ROOT/.harness-root-base" ]; then
    rm -rf "$ARM_ROOT" && mkdir -p "$ARM_ROOT"
    echo "debootstrap (a few minutes; its log: $WORK/debootstrap.log)"
    debootstrap --arch=arm64 --foreign --variant=minbase bookworm "$ARM_ROOT" "$MIRROR" \
        > "$WORK/debootstrap.log" 2>&1
    chroot "$ARM_ROOT" /debootstrap/debootstrap --second-stage >> "$WORK/debootstrap.log" 2>&1
    cat > "$ARM_ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    touch "$ARM_ROOT/.harness-root-base"
fi
cp /etc/resolv.conf "$ARM_ROOT/etc/resolv.conf"
mount -t proc proc "$ARM_ROOT/proc"; MOUNTED+=("$ARM_ROOT/proc")
mount --rbind /sys "$ARM_ROOT/sys"; mount --make-rslave "$ARM_ROOT/sys"; MOUNTED+=("$ARM_ROOT/sys")
mount --rbind /dev "$ARM_ROOT/dev"; mount --make-rslave "$ARM_ROOT/dev"; MOUNTED+=("$ARM_ROOT/dev")
# ONNX Runtime and LiteRT crash on the host's x86 /proc/cpuinfo: an ARM one, in the root only
CPUINFO="$WORK/cpuinfo"
for i in $(seq 0 $(($(nproc) - 1))); do
    printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n' "$i"
done > "$CPUINFO"
mount --bind "$CPUINFO" "$ARM_ROOT/proc/cpuinfo"; MOUNTED+=("$ARM_ROOT/proc/cpuinfo")
if [ ! -f "$ARM_ROOT/.harness-root-ready" ]; then
    # pip in the root checks certificates against this host's CA set (a proxy's CA included)
    cp /usr/local/share/ca-certificates/*.crt "$ARM_ROOT/usr/local/share/ca-certificates/" \
        2>/dev/null || true
    in_root apt-get update -qq
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv python3-pip ca-certificates
    in_root update-ca-certificates >/dev/null
    touch "$ARM_ROOT/.harness-root-ready"
fi
in_root uname -m
in_root python3 --version

say "the light agent, from this checkout: pip install '.[agent]'"
rm -rf "$ARM_ROOT/opt/harness-src" && mkdir -p "$ARM_ROOT/opt/harness-src"
git ls-files -z --cached --others --exclude-standard | grep -zv '^tests/' \
    | xargs -0 cp --parents -t "$ARM_ROOT/opt/harness-src"
[ -x "$ARM_ROOT/opt/agent/bin/python" ] || in_root python3 -m venv /opt/agent
in_root bash -c 'cd /tmp && /opt/agent/bin/pip install -q --disable-pip-version-check "/opt/harness-src[agent]"'
in_root /opt/agent/bin/pip list --disable-pip-version-check 2>/dev/null \
    | grep -iE '^(harness|numpy|psutil|ray|onnx|onnxruntime|ai-edge-litert|openvino|torch) '
if in_root /opt/agent/bin/pip show torch >/dev/null 2>&1; then
    echo "torch is in the light agent's environment: it must not be"; exit 1
fi
echo "venv size: $(du -sh "$ARM_ROOT/opt/agent" | cut -f1); root filesystem: $(du -sh --exclude=proc --exclude=sys --exclude=dev "$ARM_ROOT" | cut -f1)"
[ "$INSTALL_ONLY" = 1 ] && exit 0

say "artifacts built on x86, measured on x86 as the reference"
CHECK="$ARM_ROOT/opt/check"
rm -rf "$CHECK" && mkdir -p "$CHECK"
"$PY" benchmarks/arm_artifacts.py build --dir "$CHECK"
"$PY" benchmarks/arm_artifacts.py measure --dir "$CHECK" --side x86

say "the same cells on aarch64 (emulated), with the light agent"
in_root /opt/agent/bin/python /opt/harness-src/benchmarks/arm_artifacts.py measure \
    --dir /opt/check --side arm

say "aarch64 against x86"
status=0
"$PY" benchmarks/arm_artifacts.py compare --dir "$CHECK" || status=$?

if [ "$RAY" = 1 ]; then
    say "stretch: the root as an arm-edge Ray node of a head on 127.0.0.1"
    # Workarounds for emulation, kept here and never in the product: Python 3.11.2 in the
    # root against the host's 3.11.x (Ray checks the patch version by default), and
    # generous waits (every emulated Ray process starts hundreds of times slower).
    export RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor
    PORT=${ARM_RAY_PORT:-6391}
    setsid "$PY" -m harness.cli agent start --head --port "$PORT" --node-ip 127.0.0.1 \
        --name x86-head --num-cpus 1 > "$WORK/head.log" 2>&1 &
    STARTED+=($!)
    for _ in $(seq 60); do grep -q "Ray runtime started" "$WORK/head.log" && break; sleep 2; done
    grep -q "Ray runtime started" "$WORK/head.log" || { tail -20 "$WORK/head.log"; exit 1; }
    mkdir -p "$ARM_ROOT/root/.ray"
    cp "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" "$ARM_ROOT/root/.ray/auth_token"
    setsid chroot "$ARM_ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/opt/agent/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HARNESS_EMULATOR="$EMULATOR, cpu $QEMU_CPU_MODEL" QEMU_CPU="$QEMU_CPU_MODEL" \
        RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor \
        /opt/agent/bin/harness agent start --address "127.0.0.1:$PORT" --name qemu-arm \
        --num-cpus 1 > "$WORK/arm-node.log" 2>&1 &
    STARTED+=($!)
    joined=0
    for _ in $(seq 90); do  # up to ~15 minutes
        if "$PY" -m harness.cli agents --address "127.0.0.1:$PORT" --json 2>/dev/null \
                | grep -q '"host": "qemu-arm"'; then joined=1; break; fi
        sleep 10
    done
    "$PY" -m harness.cli agents --address "127.0.0.1:$PORT" 2>/dev/null | tail -8 || true
    if [ "$joined" = 0 ]; then
        echo "ray join: the arm node never showed up in \`harness agents\`; its log ends:"
        tail -30 "$WORK/arm-node.log"
    else
        cat > "$WORK/ray-arm.yaml" <<'EOF'
name: arm-ray
models: [{name: digits-cnn, source: "builtin:digits_cnn", dataset: digits}]
methods: [{name: fp32, kind: baseline}, {name: int8, kind: quantize, mode: static}]
formats: [onnx, tflite]
devices: [arm-edge]
measure: {batch_sizes: [1], threads: 1, warmup_s: 0.05, min_iterations: 10, min_seconds: 0.1,
          max_seconds: 1.0, timeout_s: 1800}
EOF
        timeout 2400 "$PY" -m harness.cli sweep "$WORK/ray-arm.yaml" \
            --address "127.0.0.1:$PORT" --db "$WORK/ray-arm.duckdb" \
            --cache "$WORK/ray-cache" || true
        "$PY" -m harness.cli query "select c.cell_id, c.status, d.host, d.name, d.emulated,
            m.accuracy_top1, d.runtimes->>'emulator' as emulator from cells c
            left join devices d using (device_id)
            left join measurements m using (run_id, cell_id) order by 1" \
            --db "$WORK/ray-arm.duckdb" || true
    fi
fi
exit $status
