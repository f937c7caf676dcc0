#!/usr/bin/env bash
# Gradescope setup (generated into every gmmcourse autograder zip): a Python 3.11 virtual
# environment in /opt/gmmcourse-venv with the pinned packages student code may import.
# Works on Gradescope's Ubuntu base images (22.04 ships Python 3.10: 3.11 comes from the
# distribution's python3.11 packages). Every step says what it does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${GMMCOURSE_VENV:-/opt/gmmcourse-venv}
say() { echo "[gmmcourse setup] $*"; }
py=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null &&
     "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
    py=$candidate; break
  fi
done
if [ -z "$py" ]; then
  say "no Python 3.11 with venv found: installing python3.11 and python3.11-venv with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -y
  apt-get install -y --no-install-recommends python3.11 python3.11-venv
  py=python3.11
fi
say "using $(command -v "$py") ($("$py" --version 2>&1))"
say "creating the virtual environment $venv"
"$py" -m venv "$venv"
say "installing the pinned packages of requirements.txt"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
chmod -R o+rX "$venv"
say "done: $("$venv/bin/python" -c 'import numpy, scipy; print("numpy", numpy.__version__, "scipy", scipy.__version__)')"
