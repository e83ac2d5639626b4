#!/usr/bin/env bash
# Prepares this machine for virt-setup's test suite: the Debian packages the tests run for real, and
# the unprivileged user the rootless tests run as. Idempotent; needs root (CI runs as root).
#
# Usage: scripts/setup-test-host.sh        (what `make test-setup` runs)
set -euo pipefail

TEST_USER=${VIRT_SETUP_TEST_USER:-vstest}

# Packages, by what needs them:
#   uidmap        newuidmap/newgidmap for user namespaces with more than one id
#   fuse-overlayfs, fuse3   the fuse-overlayfs live test
#   util-linux    setpriv/unshare, used by the tests as an independent oracle
#   tmux          driving the real binary in a terminal
#   systemd       systemd-detect-virt, an independent oracle for the VM probe
#   iptables, slirp4netns, iperf3, runc   the rootless stack's host-side pieces
#   busybox-static  the one binary of the test images built locally (no registry here)
#   qemu-system-x86, qemu-utils, debootstrap, e2fsprogs   the Debian 12 guest of the systemd path
#                 (scripts/vm/build-image.sh); ovmf is not needed, the guest boots its kernel directly
PACKAGES=(uidmap fuse-overlayfs fuse3 util-linux tmux systemd iptables slirp4netns iperf3 runc busybox-static
	qemu-system-x86 qemu-utils debootstrap e2fsprogs)

if [ "$(id -u)" -ne 0 ]; then
	echo "setup-test-host.sh: needs root to install packages and create the test user '$TEST_USER'." >&2
	echo "Run: sudo $0" >&2
	exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup-test-host: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! id -u "$TEST_USER" >/dev/null 2>&1; then
	echo "setup-test-host: creating user $TEST_USER"
	useradd --create-home --shell /bin/bash "$TEST_USER"
fi
# useradd adds sub-id ranges on Debian, but a user created elsewhere may lack them.
for f in /etc/subuid /etc/subgid; do
	touch "$f"
	grep -q "^$TEST_USER:" "$f" || echo "$TEST_USER:$((200000 + $(id -u "$TEST_USER") * 65536)):65536" >>"$f"
done
echo "setup-test-host: ready (test user $TEST_USER, uid $(id -u "$TEST_USER"))"
