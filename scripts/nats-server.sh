#!/usr/bin/env bash
# Prints the path of a nats-server >= 2.10, fetching one if needed.
#
# Order: $MAPFLOW_NATS_SERVER, then nats-server on PATH, then the project's
# git-ignored .tools/ folder. If none is new enough and apt is available, it
# downloads Debian trixie's own nats-server package (2.10.x; needs only libc,
# so it runs on bookworm) from the Debian mirror the machine's apt sources
# already name, with a private source list and list directory, and unpacks it
# with `dpkg -x` into .tools/ — the system's own sources and packages stay
# untouched. Why 2.10: 2.9 has no `sync_interval` and no multi-filter consumers.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
local_bin="$tools/nats-server/usr/sbin/nats-server"

new_enough() { # $1: a nats-server binary
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p') || return 1
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 10 ]; }
}

for candidate in "${MAPFLOW_NATS_SERVER:-}" "$(command -v nats-server || true)" "$local_bin"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && new_enough "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

how="Install nats-server 2.10 or newer (https://github.com/nats-io/nats-server/releases, or Debian trixie's 'nats-server' package), put it on PATH or set MAPFLOW_NATS_SERVER=/path/to/nats-server, and run again."

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "mapflow: no nats-server >= 2.10 found and apt-get is not available to fetch one. $how" >&2
  exit 1
fi

# The mirror the machine already uses for Debian (deb822 or one-line format).
mirror=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p'; \
           cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '/^deb /{for(i=2;i<=NF;i++) if ($i ~ /^(https?|ftp):/) {print $i; break}}') \
         | tr ' ' '\n' | grep -E '/debian/?$' | head -n 1 || true)
if [ -z "$mirror" ]; then
  echo "mapflow: no nats-server >= 2.10 found, and no Debian mirror in the apt sources to fetch trixie's package from. $how" >&2
  exit 1
fi

apt_dir="$tools/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$tools/download"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$keyring] ${mirror%/} trixie main" > "$apt_dir/sources.list"
opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
      -o Debug::NoLocking=1 -o APT::Get::List-Cleanup=0)
echo "mapflow: fetching nats-server from Debian trixie ($mirror) into .tools/ ..." >&2
if ! apt-get "${opts[@]}" update -qq >&2; then
  echo "mapflow: 'apt-get update' for Debian trixie failed. $how" >&2
  exit 1
fi
rm -f "$tools/download"/nats-server_*.deb
if ! (cd "$tools/download" && apt-get -o APT::Sandbox::User=root "${opts[@]}" download -qq nats-server >&2); then
  echo "mapflow: could not download trixie's nats-server package. $how" >&2
  exit 1
fi
rm -rf "$tools/nats-server"
dpkg -x "$tools/download"/nats-server_*.deb "$tools/nats-server"
if ! new_enough "$local_bin"; then
  echo "mapflow: the fetched nats-server ($local_bin) is not 2.10 or newer. $how" >&2
  exit 1
fi
echo "$local_bin"
