#!/usr/bin/env bash
# Installs the Debian packages hvsim needs to build and test. Idempotent: a no-op when every
# package is present. Works as root without sudo (uses sudo only when not root and available).
# Retries while another apt/dpkg process holds the dpkg lock.
set -u

PKGS=(
  build-essential pkg-config time
  libcmocka-dev     # unit tests
  libisal-dev       # CRC-32C (ISA-L)
  libsqlite3-dev sqlite3   # host.db, catalogs (sqlite3 CLI: tests read host.db independently)
  libxml2-dev       # CIM-XML embedded instances
  libxxhash-dev     # ground-truth block hashes (XXH3-128)
  qemu-utils        # oracle: qemu-img, qemu-io
  libvhdi-dev libvhdi-utils python3-libvhdi   # oracle: libvhdi (tests only)
  clang libclang-rt-14-dev   # libFuzzer target (make test-fuzz)
  python3 python3-pytest     # test runner and drivers
  openssl                    # make bench: fast deterministic data (AES-CTR keystream)
  # virtdisk ABI proof (conformance/virtdisk): x86_64-w64-mingw32-gcc (win32 threads variant,
  # the smallest package that ships it) and mingw-w64's own virtdisk.h/windows.h (the -dev package)
  gcc-mingw-w64-x86-64-win32 mingw-w64-x86-64-dev
  libzstd-dev libssl-dev     # engine/repo: zstd block compression, SHA-256 (OpenSSL EVP)
  libyaml-dev                # scenario files (sim/scenario)
  chromium                   # make test: the demo report rendered and screenshotted headless
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "ci/deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
apt_retry() {
  local i
  for i in $(seq 1 60); do
    if $SUDO apt-get -o DPkg::Lock::Timeout=60 "$@"; then return 0; fi
    echo "ci/deps.sh: apt-get $1 failed (attempt $i), retrying in 5 s (dpkg lock held?)" >&2
    sleep 5
  done
  return 1
}

echo "ci/deps.sh: installing ${missing[*]}" >&2
apt_retry update -q || exit 1
apt_retry install -y -q --no-install-recommends "${missing[@]}" || exit 1
