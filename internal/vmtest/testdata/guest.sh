#!/bin/sh
# Runs in the Debian 12 guest as root, from the payload disk (see scripts/vm/guest/vmtest-boot):
# prepares the guest as its administrator would for the scenario, then runs the guest tests
# (internal/vmtest/guest) as the unprivileged user tester in a real login session: su -l goes
# through PAM, so pam_systemd registers the session, sets XDG_RUNTIME_DIR and the user's bus.
# Everything printed here reaches the host; see the package comment of internal/vmtest.
set -u
cd /run/vmtest || exit 125
scenario=$(cat scenario)
run=$(cat run)
echo "VMTEST-SECTION test"
echo "guest: kernel $(uname -r), $(systemctl --version | head -1), scenario $scenario"

install -m 0755 virt-setup /usr/local/bin/virt-setup
# The host's address for container → host traffic: qemu's user network, configured statically
# (the image has no DHCP client; nothing outside the guest is reached).
addr=$(cat address)
ip link set eth0 up && ip addr add "$addr" dev eth0

case $scenario in
delegated)
	# What the administrator does once per host (rootlesscontaine.rs, "Enabling CPU, CPUSET,
	# and I/O delegation"): Debian delegates only memory and pids by default.
	mkdir -p /etc/systemd/system/user@.service.d
	printf '[Service]\nDelegate=cpu cpuset io memory pids\n' >/etc/systemd/system/user@.service.d/delegate.conf
	systemctl daemon-reload
	;;
undelegated)
	# Debian's default, left as it is: the prerequisite this scenario breaks. tester may use
	# sudo without a password, so that install --sudo can run the root script it saved.
	echo 'tester ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/tester
	chmod 0440 /etc/sudoers.d/tester
	;;
*)
	echo "VMTEST-RESULT exit=125 unknown scenario $scenario"
	echo "VMTEST-END"
	exit 0
	;;
esac

# Lingering starts tester's user manager now and keeps it without a login.
loginctl enable-linger tester
i=0
until systemctl is-active --quiet user@1000.service; do
	i=$((i + 1))
	if [ $i -gt 240 ]; then
		echo "user@1000.service did not start:"
		systemctl status --no-pager user@1000.service
		break
	fi
	sleep 0.25
done

dir=/home/tester/vmtest
mkdir -p $dir
cp guest.test busybox.tar answers.toml answers-fuse.toml address $dir/
chown -R tester:tester $dir
start=$(date +%s)
su -l tester -c "cd vmtest && ./guest.test -test.v -test.count=1 -test.timeout=15m -test.run '$run' 2>&1"
rc=$?
echo "guest: the tests took $(($(date +%s) - start)) s"
echo "VMTEST-RESULT exit=$rc"

echo "VMTEST-SECTION journal"
journalctl -b --no-pager -o short-monotonic
echo "VMTEST-SECTION user-journal"
journalctl -b --no-pager -o short-monotonic _UID=1000
echo "VMTEST-END"
