#!/bin/sh
# Chromium and its WebDriver for the end-to-end test (tests/test_demo_e2e.py).
# Installs them with apt-get when they are missing and we are root on Debian or Ubuntu;
# otherwise says so and succeeds, and the e2e test skips with the same reason.
set -eu

if command -v chromedriver >/dev/null 2>&1 \
    && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: chromium and chromedriver are missing; install them as root with" >&2
    echo "  apt-get install chromium chromium-driver" >&2
    echo "(the end-to-end browser test is skipped until then)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver \
    || apt-get install -y -qq --no-install-recommends chromium-browser chromium-chromedriver
