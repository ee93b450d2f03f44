#!/usr/bin/env bash
# Makes sure the browser tests have a Chromium: prints its path, or a line
# saying why there is none (the browser tests then skip, saying the same).
#
# Order: $MAPFLOW_CHROMIUM, then chromium on PATH. When neither exists and
# this runs as root with apt-get, it installs Debian's own `chromium`
# package. Playwright's browser download is never used: this machine's
# network reaches only the npm registry and Debian's mirrors.
set -uo pipefail

for candidate in "${MAPFLOW_CHROMIUM:-}" "$(command -v chromium || true)" /usr/bin/chromium; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    echo "$candidate"
    exit 0
  fi
done

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "mapflow: no Chromium found and this user cannot install one (needs root and apt-get); the browser tests will skip. Install Debian's 'chromium' package or set MAPFLOW_CHROMIUM=/path/to/chromium." >&2
  exit 0
fi

echo "mapflow: installing Debian's chromium package for the browser tests (once)..." >&2
if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/tmp/mapflow-chromium-install.log 2>&1; then
  command -v chromium
else
  echo "mapflow: installing chromium failed (see /tmp/mapflow-chromium-install.log); the browser tests will skip." >&2
fi
exit 0
