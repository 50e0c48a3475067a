#!/bin/sh
# Generates ./configure.  Run once after cloning.
set -e
cd "$(dirname "$0")"
mkdir -p build-aux/autotools
autoreconf --install --force
