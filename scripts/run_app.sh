#!/usr/bin/env bash
# Set up (if needed) and start the Gradio app on http://localhost:7860
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python app.py "$@"
