#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test etcdkit: pnpm, etcd
# (Debian's etcd-server and etcd-client packages), with --with-go Go and etcd's
# Go sources (for the interop tests), and the locked dependencies.
# Safe to run again: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

pnpm_version=$(node -p "require('./package.json').packageManager.split('@')[1]")
if ! command -v pnpm >/dev/null 2>&1; then
  say "installing pnpm ${pnpm_version}"
  npm install --global --no-fund --no-audit "pnpm@${pnpm_version}" >/dev/null
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

if [ -z "${ETCD_BIN:-}" ] && ! command -v etcd >/dev/null 2>&1; then
  say "etcd not found: installing Debian's etcd-server and etcd-client"
  if ! command -v apt-get >/dev/null 2>&1 ||
     ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -qq --no-install-recommends etcd-server etcd-client >/dev/null; }; then
    say "could not install etcd. Install etcd 3.4+ yourself, put it on PATH or set ETCD_BIN, and run again."
    exit 1
  fi
fi
# The TLS tests make their certificates with openssl.
if ! command -v openssl >/dev/null 2>&1; then
  say "openssl not found: installing it"
  { as_root apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null; } ||
    { say "could not install openssl; install it and run again"; exit 1; }
fi

# The barrier interop tests build a Go program against etcd's own Go recipes:
# Debian's Go and etcd 3.4 Go sources (about 140 packages and 760 MB; some two
# minutes to download and unpack), installed only for the tests (--with-go).
# ETCDKIT_GOPATH points elsewhere if wanted.
gopath=${ETCDKIT_GOPATH:-/usr/share/gocode}
if [ "${1:-}" = --with-go ] &&
   { ! command -v go >/dev/null 2>&1 || [ ! -d "$gopath/src/go.etcd.io/etcd/contrib/recipes" ]; }; then
  say "go or etcd's Go sources not found: installing Debian's golang-go and golang-etcd-server-dev"
  { as_root apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      golang-go golang-etcd-server-dev >/dev/null; } ||
    { say "could not install them; install Go and etcd 3.4's Go sources (or set ETCDKIT_GOPATH) and run again"; exit 1; }
fi

say "etcd: $("${ETCD_BIN:-etcd}" --version | head -n 1)"

say "installing dependencies"
pnpm install --frozen-lockfile --reporter=silent
