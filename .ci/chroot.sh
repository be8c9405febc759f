# shellcheck shell=bash
# Sourced by .ci/trixie and .ci/arm64: a Debian chroot holding a clean clone of this repository.
#   chroot_need_root NAME WHY               exit 2 with a message unless run as root
#   chroot_prepare ROOT SUITE [OPTION...]   debootstrap ROOT (minbase, OPTIONs added) unless it
#                                           already has python3; bind the host's proc, sys, dev;
#                                           trust the host's CAs and resolver; clone into
#                                           ROOT/work/main
#   chroot_bind SOURCE TARGET               one more bind mount
#   chroot_exec ROOT [NAME=VALUE...] -- CMD run CMD with bash in /work/main inside ROOT, in a
#                                           clean environment plus the NAME=VALUEs
# Every mount is undone when the sourcing script exits, however it exits.

chroot_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
chroot_mounts=()
chroot_cleanup() {
  for ((i = ${#chroot_mounts[@]} - 1; i >= 0; i--)); do umount "${chroot_mounts[i]}" 2>/dev/null || true; done
}
trap chroot_cleanup EXIT

chroot_need_root() {
  [ "$(id -u)" = 0 ] || { echo "$1 needs root ($2)" >&2; exit 2; }
}

chroot_bind() {
  mount --bind "$1" "$2" && chroot_mounts+=("$2")
}

chroot_prepare() {
  local root=$1 suite=$2 d
  shift 2
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  if [ ! -x "$root/usr/bin/python3" ]; then
    debootstrap --variant=minbase "$@" "$suite" "$root" http://deb.debian.org/debian >/dev/null
  fi
  for d in proc sys dev dev/pts; do
    chroot_bind "/$d" "$root/$d"
  done
  # The chroot trusts what the host trusts (a proxy's CA, say) and resolves names as the host does.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/host-ca.crt"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  rm -rf "$root/work/main"
  mkdir -p "$root/work"
  git clone -q "$chroot_repo" "$root/work/main"
}

chroot_exec() {
  local root=$1 ca=/etc/ssl/certs/host-ca.crt
  local -a vars=()
  shift
  while [ "$1" != -- ]; do
    vars+=("$1")
    shift
  done
  chroot "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    PIP_CERT=$ca SSL_CERT_FILE=$ca REQUESTS_CA_BUNDLE=$ca "${vars[@]}" bash -c "cd /work/main && $2"
}
