#!/usr/bin/env bash
# Installs what rsslab needs on a Debian host: QEMU 10 or newer (from the backports suite of
# the host's own Debian release when its main suite is older), e2fsprogs for scratch disks,
# a C compiler (gcc, libc6-dev) for Go builds with cgo, such as `-race`, and gpgv with Debian's
# archive keyring, which verify the archive's signed indexes for `--kernel debian:<version>`,
# and a font (fonts-dejavu-core) for the text of `rsslab export --format png`.
# The apt source for backports is derived from the machine's own Debian source entry, so no
# archive host name is written into this repository. Idempotent; needs root (or sudo).
set -euo pipefail

# Only installing needs root: rsslab itself runs labs as any user.
need_root() {
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; return; fi
  if ! command -v sudo >/dev/null 2>&1; then
    echo "host deps: installing $1 needs root: run scripts/install-host-deps.sh as root (or install sudo); rsslab itself needs no root" >&2
    exit 3
  fi
  echo "host deps: installing $1 needs root: using sudo" >&2
  SUDO="sudo"
}

qemu_major() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || { echo 0; return; }
  qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p'
}

# A user's PATH often lacks the sbin directories, where Debian puts mkfs.ext4.
have_mkfs() { PATH="$PATH:/usr/sbin:/sbin" command -v mkfs.ext4 >/dev/null 2>&1; }

have_keyring() { command -v gpgv >/dev/null 2>&1 && [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; }

have_font() { [ -d /usr/share/fonts/truetype/dejavu ]; }

if [ "$(qemu_major)" -ge 10 ] && have_mkfs && command -v gcc >/dev/null 2>&1 && have_keyring && have_font; then
  echo "host deps: qemu $(qemu_major).x, mkfs.ext4, gcc, gpgv, the archive keyring and a font present"
  exit 0
fi

. /etc/os-release
codename="${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"

# The archive URI of the host's own Debian entry (deb822 .sources or one-line sources.list).
archive_uri() {
  local uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  echo "${uri%/}"
}

packages="qemu-system-x86 e2fsprogs gcc libc6-dev gpgv debian-archive-keyring fonts-dejavu-core"
need_root "$packages (QEMU 10 or newer, mkfs.ext4, a C compiler, gpgv, the archive keyring, a font)"
case "$codename" in
  bookworm)
    uri=$(archive_uri)
    [ -n "$uri" ] || { echo "cannot find the host's Debian archive in /etc/apt/sources*" >&2; exit 3; }
    echo "deb $uri ${codename}-backports main" | $SUDO tee /etc/apt/sources.list.d/rsslab-backports.list >/dev/null
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t "${codename}-backports" qemu-system-x86
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends e2fsprogs gcc libc6-dev gpgv debian-archive-keyring fonts-dejavu-core
    ;;
  *)
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages
    ;;
esac

if [ "$(qemu_major)" -lt 10 ]; then
  echo "installed QEMU is $(qemu-system-x86_64 --version | head -1); rsslab needs 10 or newer" >&2
  exit 3
fi
echo "host deps: $(qemu-system-x86_64 --version | head -1)"
