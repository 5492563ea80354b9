#!/bin/sh
# Settings of the system-manager test machine, applied to its root directory
# (the argument) when scripts/system-machine builds the image.
set -eu
root=${1:?usage: setup.sh ROOT}

# Units that cannot work in a container (no kernel modules to load, no pstore),
# or that only add work (consoles, timers of a long-lived host, the DHCP proxy
# and firewalld hook of netavark).
systemctl --root="$root" mask --quiet \
    systemd-modules-load.service systemd-pstore.service \
    getty@.service console-getty.service \
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    netavark-dhcp-proxy.socket netavark-dhcp-proxy.service \
    netavark-firewalld-reload.service
# Podman's API socket, as immich-db reaches it on a host (/run/podman/podman.sock).
systemctl --root="$root" enable --quiet podman.socket

# As on the test host: crun refuses cgroups in hybrid mode, and podman's default
# ulimits exceed this machine kind's hard limits.
mkdir -p "$root"/etc/containers
cat >"$root"/etc/containers/containers.conf <<'CONF'
# immich-db system-manager test machine (scripts/images/system-host)
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF

# The machine's own storage is a volume at /var/lib/containers/storage; the test
# images come read-only from a store that provisioning fills, bind-mounted at
# /var/lib/containers/test-images, so that no machine loads them at start.
cat >"$root"/etc/containers/storage.conf <<'CONF'
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"

[storage.options]
additionalimagestores = ["/var/lib/containers/test-images"]
CONF
mkdir -p "$root"/var/lib/containers/storage "$root"/var/lib/containers/test-images

# The host's kernel ring buffer is not this machine's log.
mkdir -p "$root"/etc/systemd/journald.conf.d "$root"/etc/systemd/system.conf.d
printf '[Journal]\nReadKMsg=no\n' >"$root"/etc/systemd/journald.conf.d/machine.conf
printf '[Manager]\nDefaultEnvironment=PODMAN_IGNORE_CGROUPSV1_WARNING=1\n' \
    >"$root"/etc/systemd/system.conf.d/machine.conf

# Each machine gets its own ID at boot (systemd derives it from the container's).
: >"$root"/etc/machine-id
rm -f "$root"/var/lib/dbus/machine-id
