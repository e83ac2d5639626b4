#!/usr/bin/env bash
# Times `virt-setup probe --json` (live tests included) on this host, the way a user runs it: as the
# unprivileged test user when run as root, else as yourself. Prints min/median/max wall time over N
# runs and the slowest probe of the median run.
#
# Usage: scripts/time-probe.sh BINARY [N]
set -euo pipefail
bin=$(realpath "${1:?usage: time-probe.sh BINARY [N]}")
n=${2:-20}
user=${VIRT_SETUP_TEST_USER:-vstest}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
cp "$bin" "$tmp/virt-setup"
run=("$tmp/virt-setup" probe --json)
if [ "$(id -u)" -eq 0 ]; then
	id -u "$user" >/dev/null 2>&1 || { echo "time-probe: no user $user; run scripts/setup-test-host.sh" >&2; exit 1; }
	home=$(getent passwd "$user" | cut -d: -f6)
	run=(setpriv --reuid="$user" --regid="$user" --init-groups -- env -i HOME="$home" USER="$user" PATH=/usr/local/bin:/usr/bin:/bin "${run[@]}")
	who=$user
else
	who=$(id -un)
fi

"${run[@]}" >/dev/null # warm the page cache once
times=()
for i in $(seq "$n"); do
	start=$(date +%s%N)
	"${run[@]}" >"$tmp/out.$i.json"
	end=$(date +%s%N)
	times+=("$(( (end - start) / 1000 )) $i")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
min=$(echo "$sorted" | head -1 | cut -d' ' -f1)
max=$(echo "$sorted" | tail -1 | cut -d' ' -f1)
med_line=$(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p")
med=${med_line% *}
med_run=${med_line#* }
# The probes list is sorted slowest first; its first entry is the slowest probe.
slowest=$(grep -A4 '"probes": \[' "$tmp/out.$med_run.json" | grep -E '"name"|"duration"' | sed -E 's/.*: "([^"]*)".*/\1/' | paste -sd' ')
printf 'probe --json as %s, %d runs: min %d.%03d ms, median %d.%03d ms, max %d.%03d ms\n' "$who" "$n" \
	$((min / 1000)) $((min % 1000)) $((med / 1000)) $((med % 1000)) $((max / 1000)) $((max % 1000))
echo "slowest probe in the median run: $slowest"
