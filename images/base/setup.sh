#!/bin/sh
# Finishes the debootstrapped Debian tree that becomes the base image of images/*/Dockerfile.
# hack/images/build.sh runs it inside the tree (chroot, private mount namespace, /proc mounted):
#   setup.sh MIRROR SECURITY_MIRROR SUITE
# Any change to this file changes the base's cache key, so the next build re-creates the base.
set -eu

mirror=$1 security_mirror=$2 suite=$3
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# debootstrap fetches the release only: add point-release and security updates.
rm -f /etc/apt/sources.list.d/*
cat >/etc/apt/sources.list <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF

# Slim like the official Debian images: later apt installs skip docs, man pages and translations
# (copyright files stay), never pull recommends, and keep no package cache.
cat >/etc/dpkg/dpkg.cfg.d/cairn-slim <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cat >/etc/apt/apt.conf.d/cairn-slim <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
EOF

# pip installs into the system Python, as in the python:3.11-slim image the Dockerfiles name.
# Divert PEP 668's marker (not just delete it) so a later python3.11 upgrade cannot bring it back.
for marker in /usr/lib/python3*/EXTERNALLY-MANAGED; do
    [ -e "$marker" ] || continue
    dpkg-divert --local --rename --add "$marker" >/dev/null
done

apt-get -q update
apt-get -q -y -o Dpkg::Options::=--force-confold upgrade
apt-get clean
rm -f /usr/lib/python3*/EXTERNALLY-MANAGED.distrib  # where dpkg now puts it, upgrades included

# Both names must work, as in the official image (python-is-python3 provides /usr/bin/python).
python --version >/dev/null
python3 -m pip --version >/dev/null

find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/lintian/* \
    /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
    /var/log/apt/* /var/log/*.log /tmp/* /var/tmp/*
# Container runtimes provide these at run time; never ship the build host's.
: >/etc/resolv.conf
: >/etc/hostname
chmod 0644 /etc/resolv.conf /etc/hostname
