#!/usr/bin/env bash
# Builds the Debian 12 guest in which the systemd path of virt-setup is tested (make vm-image):
# a root file system with systemd, a user manager for logins, the rootless stack's Debian packages
# and the pinned components this host built (scripts/install-components.sh), as an ext4 disk
# image plus the guest's own kernel and initrd. Nothing of virt-setup itself is baked in: each run
# brings the binary and the tests on a second disk (internal/vmtest), so a code change never
# rebuilds the image.
#
# The image is cached by a key over this script, the guest's boot service and the component
# binaries; a second run with the same inputs takes a second. Needs root (debootstrap, chroot).
#
# Usage: scripts/vm/build-image.sh            (prints the image directory on its last line)
# Environment: VIRT_SETUP_VM_CACHE  cache directory (default /var/cache/virt-setup/vm)
#              DEBIAN_MIRROR        (default http://deb.debian.org/debian)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${VIRT_SETUP_VM_CACHE:-/var/cache/virt-setup/vm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
BIN=/usr/local/bin
CNI_DIR=/opt/cni/bin
# The pinned components, as scripts/install-components.sh installs them.
COMPONENTS=(containerd containerd-shim-runc-v2 rootlesskit rootlessctl bypass4netns bypass4netnsd nerdctl
	containerd-rootless.sh containerd-rootless-setuptool.sh containerd-fuse-overlayfs-grpc)
# What a Debian 12 user of rootless containerd has installed, and what the guest needs to boot
# and log in: systemd with logind and a user manager (dbus-user-session, libpam-systemd), udev
# for device modes, uidmap, slirp4netns, iptables, runc, iperf3, sudo for the root steps.
PACKAGES=(systemd systemd-sysv udev dbus dbus-user-session libpam-systemd kmod linux-image-amd64
	uidmap slirp4netns iptables runc iperf3 iproute2 procps sudo fuse-overlayfs fuse3 ca-certificates)

log() { echo "build-image: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap and chroot). Run: sudo $0"
for tool in debootstrap mkfs.ext4 qemu-system-x86_64; do
	command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup-test-host.sh"
done
for c in "${COMPONENTS[@]}"; do
	[ -x "$BIN/$c" ] || die "$BIN/$c is missing: run scripts/install-components.sh"
done
[ -x "$CNI_DIR/bridge" ] || die "$CNI_DIR/bridge is missing: run scripts/install-components.sh"

key=$(
	{
		cat "$0" "$here/guest/virt-setup-vmtest.service" "$here/guest/vmtest-boot"
		(cd "$BIN" && sha256sum "${COMPONENTS[@]}")
		(cd "$CNI_DIR" && sha256sum ./*)
	} | sha256sum | cut -c1-16
)
out=$CACHE/$key
if [ -f "$out/ready" ]; then
	ln -sfn "$key" "$CACHE/current"
	log "cached: $out"
	echo "$out"
	exit 0
fi

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
cleanup() {
	# A debootstrap that died may leave /proc, /sys or /dev mounted in the new root: unmount them,
	# and never let rm cross into another file system.
	grep -o " $work/rootfs/[^ ]*" /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null || true
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
root=$work/rootfs
start=$SECONDS

log "debootstrap $SUITE from $MIRROR (about two minutes)"
debootstrap --variant=minbase --include="$(
	IFS=,
	echo "${PACKAGES[*]}"
)" "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
	tail -30 "$work/debootstrap.log" >&2
	die "debootstrap failed (log above)"
}

log "configuring the guest"
echo vs-guest >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vs-guest\n' >"$root/etc/hosts"
printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
# The unprivileged user the tests run as; useradd gives it sub-id ranges from login.defs.
chroot "$root" useradd --create-home --shell /bin/bash --uid 1000 tester
grep -q '^tester:' "$root/etc/subuid" || die "useradd gave tester no subuid range"
# Root may log in on the console without a password (the guest has no network and is thrown away).
chroot "$root" passwd -d root >/dev/null
# Timers and services that would only slow down a one-shot boot.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
	systemd-timesyncd.service; do
	ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
install -m 0644 "$here/guest/virt-setup-vmtest.service" "$root/etc/systemd/system/virt-setup-vmtest.service"
install -m 0755 "$here/guest/vmtest-boot" "$root/usr/local/sbin/vmtest-boot"
ln -sf /etc/systemd/system/virt-setup-vmtest.service "$root/etc/systemd/system/multi-user.target.wants/virt-setup-vmtest.service"

for c in "${COMPONENTS[@]}"; do
	install -m 0755 "$BIN/$c" "$root/usr/local/bin/$c"
done
mkdir -p "$root/opt/cni/bin"
cp -a "$CNI_DIR/." "$root/opt/cni/bin/"

mkdir -p "$work/image"
cp "$root"/boot/vmlinuz-* "$work/image/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/image/initrd.img"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

log "making the disk image"
mkfs.ext4 -q -L vs-root -d "$root" "$work/image/rootfs.img" 4G
chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' >"$work/image/packages.txt"
touch "$work/image/ready"
rm -rf "$out"
mv "$work/image" "$out"
ln -sfn "$key" "$CACHE/current"
# Older images (other keys) are no longer used by this checkout; each takes about 1 GiB.
for old in "$CACHE"/*/; do
	old=${old%/}
	[ -L "$old" ] && continue # current
	case ${old##*/} in "$key" | build.*) continue ;; esac
	[ -f "$old/ready" ] && rm -rf --one-file-system "$old"
done
log "built $out in $((SECONDS - start)) s"
echo "$out"
