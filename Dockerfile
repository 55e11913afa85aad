# MidiDrumiGen: the Gradio app + API, as a Hugging Face Space (Docker SDK) or on any server.
#   docker build -t mididrumigen . && docker run --rm -p 7860:7860 mididrumigen
FROM python:3.11-slim

# FluidSynth (audio preview), the FluidR3 GM SoundFont, libsndfile (WAV/OGG)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libfluidsynth3 fluid-soundfont-gm libsndfile1 \
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
WORKDIR /home/user/app

# Dependencies first (a cached layer): torch's CPU build (the default wheel pulls GBs of CUDA),
# then the pinned rest; `torch==2.13.0` there is satisfied by the installed 2.13.0+cpu.
COPY requirements.txt .
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install -r requirements.txt

COPY --chown=user app.py pyproject.toml ./
COPY --chown=user drumgen/ drumgen/
COPY --chown=user styles/ styles/
COPY --chown=user checkpoints/ checkpoints/

USER user
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"
CMD ["python", "app.py"]
