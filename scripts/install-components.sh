#!/usr/bin/env bash
# Installs the pinned rootless stack the end-to-end tests use, built from source through the Go
# module proxy (no other download works on the test machines): containerd + shim, RootlessKit,
# bypass4netns, CNI plugins, nerdctl and its rootless scripts, containerd-fuse-overlayfs-grpc.
# Idempotent: a component whose binary already reports the pinned version is left alone. Needs root
# (installs to $PREFIX, default /usr/local).
#
# Usage: scripts/install-components.sh
set -euo pipefail

CONTAINERD_VERSION=v2.4.2
ROOTLESSKIT_VERSION=v2.3.6
BYPASS4NETNS_VERSION=v0.4.2
CNI_VERSION=v1.10.0
NERDCTL_VERSION=v2.0.5
FUSE_OVERLAYFS_SNAPSHOTTER_VERSION=v2.1.7

PREFIX=${PREFIX:-/usr/local}
BIN=$PREFIX/bin
CNI_DIR=${CNI_DIR:-/opt/cni/bin}
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS=-mod=mod
# nerdctl's module is not in the checksum database under every proxy; verify it through go.sum instead.
export GONOSUMDB=github.com/containerd/nerdctl

if [ "$(id -u)" -ne 0 ]; then
	echo "install-components.sh: needs root to install into $PREFIX and $CNI_DIR. Run: sudo $0" >&2
	exit 1
fi

log() { echo "install-components: $*"; }

# Build-time packages: cgo for containerd and bypass4netns (libseccomp), runtime pieces from Debian.
PACKAGES=(gcc libc6-dev libseccomp-dev pkg-config uidmap slirp4netns iptables runc fuse-overlayfs)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# has BINARY VERSION: the binary exists and its --version output names VERSION (without the v).
has() { [ -x "$1" ] && "$1" --version 2>&1 | grep -qF "${2#v}"; }

if ! has "$BIN/containerd" "$CONTAINERD_VERSION"; then
	log "building containerd $CONTAINERD_VERSION"
	CGO_ENABLED=1 GOBIN=$BIN go install \
		-ldflags "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
		"github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
		"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
fi

if ! has "$BIN/rootlesskit" "$ROOTLESSKIT_VERSION"; then
	log "building rootlesskit $ROOTLESSKIT_VERSION"
	GOBIN=$BIN go install \
		"github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit@$ROOTLESSKIT_VERSION" \
		"github.com/rootless-containers/rootlesskit/v2/cmd/rootlessctl@$ROOTLESSKIT_VERSION"
fi

if ! [ -x "$BIN/bypass4netnsd" ] || ! [ -f "$BIN/.bypass4netns-$BYPASS4NETNS_VERSION" ]; then
	log "building bypass4netns $BYPASS4NETNS_VERSION"
	CGO_ENABLED=1 GOBIN=$BIN go install \
		"github.com/rootless-containers/bypass4netns/cmd/bypass4netns@$BYPASS4NETNS_VERSION" \
		"github.com/rootless-containers/bypass4netns/cmd/bypass4netnsd@$BYPASS4NETNS_VERSION"
	touch "$BIN/.bypass4netns-$BYPASS4NETNS_VERSION"
fi

if ! [ -x "$CNI_DIR/bridge" ] || ! "$CNI_DIR/bridge" 2>&1 | grep -qF "$CNI_VERSION"; then
	log "building CNI plugins $CNI_VERSION"
	mkdir -p "$CNI_DIR"
	# Without the build version nerdctl treats the plugins as too old and disables bridge isolation.
	GOBIN=$CNI_DIR go install \
		-ldflags "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_VERSION" \
		"github.com/containernetworking/plugins/plugins/...@$CNI_VERSION"
fi

if ! has "$BIN/nerdctl" "$NERDCTL_VERSION"; then
	log "building nerdctl $NERDCTL_VERSION"
	# `go install pkg@version` refuses modules with replace directives, so build inside a throw-away
	# module that requires nerdctl.
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	(
		cd "$work"
		go mod init virt-setup-nerdctl-build >/dev/null 2>&1
		go get "github.com/containerd/nerdctl/v2@$NERDCTL_VERSION" >/dev/null 2>&1
		go build -ldflags "-X github.com/containerd/nerdctl/v2/pkg/version.Version=$NERDCTL_VERSION" \
			-o "$BIN/nerdctl" github.com/containerd/nerdctl/v2/cmd/nerdctl
	)
	modroot=$(cd "$work" && go list -m -f '{{.Dir}}' "github.com/containerd/nerdctl/v2")
	for s in containerd-rootless.sh containerd-rootless-setuptool.sh; do
		install -m 0755 "$modroot/extras/rootless/$s" "$BIN/$s"
	done
fi

# containerd-fuse-overlayfs-grpc has no version flag (its first argument is the socket it listens on),
# so the module version recorded in the binary tells whether it is the pinned one.
if ! [ -x "$BIN/containerd-fuse-overlayfs-grpc" ] ||
	! go version -m "$BIN/containerd-fuse-overlayfs-grpc" 2>/dev/null |
	grep -qE "^\s+mod\s+github.com/containerd/fuse-overlayfs-snapshotter/v2\s+$FUSE_OVERLAYFS_SNAPSHOTTER_VERSION\s"; then
	log "building containerd-fuse-overlayfs-grpc $FUSE_OVERLAYFS_SNAPSHOTTER_VERSION"
	GOBIN=$BIN go install \
		"github.com/containerd/fuse-overlayfs-snapshotter/v2/cmd/containerd-fuse-overlayfs-grpc@$FUSE_OVERLAYFS_SNAPSHOTTER_VERSION"
fi

log "ready: $("$BIN/containerd" --version | head -1); $("$BIN/rootlesskit" --version); $("$BIN/nerdctl" --version); CNI $CNI_VERSION in $CNI_DIR; containerd-fuse-overlayfs-grpc $FUSE_OVERLAYFS_SNAPSHOTTER_VERSION"
