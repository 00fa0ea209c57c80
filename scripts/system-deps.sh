#!/usr/bin/env bash
# Debian tools the test suite needs: chromium (browser tests), espeak-ng and sox (test speech),
# ffmpeg (browser-format test files). Installs what is missing when run as root; otherwise says how.
set -euo pipefail
declare -A provides=([chromium]=chromium [espeak-ng]=espeak-ng [sox]=sox [ffmpeg]=ffmpeg)
missing=()
for tool in "${!provides[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${provides[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
