# MidiDrumiGen: the Gradio app + API, as a Hugging Face Space (Docker SDK) or on any server.
#   docker build -t mididrumigen . && docker run --rm -p 7860:7860 mididrumigen
# scripts/docker_smoke.sh builds and checks it with podman.
FROM python:3.11-slim

# FluidSynth (audio preview), the FluidR3 GM SoundFont, libsndfile (WAV/OGG). apt-get clean: the
# downloaded .debs stay in the layer on a base without the slim image's apt hook (about 200 MB).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libfluidsynth3 fluid-soundfont-gm libsndfile1 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# Hugging Face Spaces run the container as uid 1000
RUN useradd -m -u 1000 user
ENV HOME=/home/user \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False

# Dependencies first (a cached layer), by the same step as scripts/setup.sh: requirements.lock (every
# package but torch, hash-checked), then torch's CPU build from PyTorch's CPU index, or the plain pin
# where that index is unreachable.
COPY requirements.txt requirements.lock /tmp/deps/
COPY scripts/install_deps.sh /tmp/deps/scripts/
RUN bash /tmp/deps/scripts/install_deps.sh python /tmp/deps/requirements.lock && rm -rf /tmp/deps

# The app folder belongs to the user: gradio writes beside the code at start-up (type stubs, .gradio/).
RUN install -d -o user -g user /home/user/app
USER user
WORKDIR /home/user/app
# The rest of the build context: what .dockerignore lets through (app.py, drumgen/, styles/,
# drum_maps/ when present, checkpoints/, pyproject.toml and the requirements)
COPY --chown=user . ./

EXPOSE 7860
# Shell form, so the port is the container's $GRADIO_SERVER_PORT when the check runs
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${GRADIO_SERVER_PORT:-7860}/', timeout=4)"
CMD ["python", "app.py"]
