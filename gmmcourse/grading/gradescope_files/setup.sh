#!/usr/bin/env bash
# Gradescope setup (generated into every gmmcourse autograder zip): a Python >= 3.11 virtual
# environment in /opt/gmmcourse-venv with the pinned packages student code may import.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pick() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}
if ! py=$(pick); then
  apt-get update -y
  apt-get install -y python3.11 python3.11-venv
  py=python3.11
fi
"$py" -m venv /opt/gmmcourse-venv
/opt/gmmcourse-venv/bin/python -m pip install --upgrade pip
/opt/gmmcourse-venv/bin/python -m pip install -r "$here/requirements.txt"
chmod -R o+rX /opt/gmmcourse-venv
