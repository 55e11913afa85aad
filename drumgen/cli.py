"""Command line: ``python -m drumgen {styles,drum-maps,generate,humanize,continue,reroll,drumify,train,...}``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from drumgen.constants import AUDIO_FORMATS, DEFAULT_SAMPLE_RATE
from drumgen.limits import (
    BARS,
    COUNT,
    FILL_EVERY,
    HUMANIZE,
    KIT,
    SAMPLE_RATE,
    SWING,
    TEMPERATURE,
    TEMPO,
    TOP_K,
    TOP_P,
    VARIATION,
)
from drumgen.resources import REPO_ROOT

if TYPE_CHECKING:
    from drumgen.engine import Groove

log = logging.getLogger("drumgen")

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "groove"
DEFAULT_OUT = Path("out")


def _cmd_styles(args: argparse.Namespace) -> int:
    from drumgen.styles import list_styles

    print(json.dumps([s.to_dict() for s in list_styles()], indent=2))
    return 0


def _cmd_drum_maps(args: argparse.Namespace) -> int:
    from drumgen.drum_maps import drum_maps_json

    print(json.dumps(drum_maps_json(), indent=2))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from drumgen.engine import Engine
    from drumgen.request import GenerateRequest

    req = GenerateRequest(style=args.style, bars=args.bars, tempo=args.tempo, seed=args.seed, count=args.count,
                          temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                          humanize=args.humanize, variation=args.variation, swing=args.swing, kit=args.kit,
                          fill_every=args.fill_every, drum_map=args.drum_map, split_tracks=args.split_tracks,
                          audio=not args.no_audio, sample_rate=args.sample_rate)
    engine = Engine.load()
    return _write_and_print(engine.generate(req), args)


def _write_and_print(grooves: list[Groove], args: argparse.Namespace) -> int:
    """Write each groove into ``--out`` and print its JSON line: paths, summary, notices, audio error."""
    from drumgen.engine import write_groove

    for groove in grooves:
        paths = write_groove(groove, args.out, args.audio_format)
        line = {**paths, **{k: v for k, v in groove.summary.items() if k != "file"}, "notices": groove.notices}
        if groove.audio_error:
            line["audio_error"] = groove.audio_error
        print(json.dumps(line), flush=True)
    return 0


def _cmd_mode(args: argparse.Namespace) -> int:
    """humanize / continue / reroll / drumify: one uploaded MIDI file through the mode of that name."""
    from drumgen.engine import Engine
    from drumgen.request import GenerateRequest
    from drumgen.uploads import ModeOptions, display_name, read_upload, run_mode

    data = read_upload(args.input)  # a bad file fails before the model loads
    req = GenerateRequest(style=args.style, bars=getattr(args, "bars", 4), seed=args.seed, count=args.count,
                          temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, humanize=args.humanize,
                          variation=args.variation, swing=args.swing, kit=args.kit, fill_every=args.fill_every,
                          drum_map=args.drum_map, split_tracks=args.split_tracks, audio=not args.no_audio,
                          sample_rate=args.sample_rate)
    options = ModeOptions(quantize=getattr(args, "quantize", False), only_new=getattr(args, "only_new", False),
                          keep=getattr(args, "keep", ""))
    return _write_and_print(run_mode(Engine.load(), args.command, data, req, options, name=display_name(args.input)),
                            args)


def _cmd_train(args: argparse.Namespace) -> int:
    from drumgen.tools.train import TrainConfig, train

    cfg = TrainConfig(epochs=args.epochs, windows_per_epoch=args.windows_per_epoch, batch_size=args.batch_size,
                      lr=args.lr, seed=args.seed, max_minutes=args.max_minutes, n_layer=args.n_layer,
                      n_head=args.n_head, n_embd=args.n_embd, threads=args.threads)
    meta = train(args.data, args.out, cfg, device=args.device)
    print(json.dumps({"checkpoint": str(Path(args.out) / "drumgen.pt"), "val_loss": meta["val_loss"],
                      "best_epoch": meta["best_epoch"], "train_minutes": meta["train_minutes"]}))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from drumgen.tools.evaluate import evaluate

    report = evaluate(args.data, checkpoint=args.checkpoint, split=args.split, samples=args.samples,
                      grooves=args.grooves, seed=args.seed)
    print(json.dumps(report, indent=2))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from drumgen.tools.calibrate import calibrate

    print(json.dumps(calibrate(args.data, checkpoint=args.checkpoint, split=args.split, grooves=args.grooves),
                     indent=2))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from drumgen.tools.bench import run_api_bench, run_bench

    report = run_bench(checkpoint=args.checkpoint, repeats=args.repeats)
    if args.previews:
        from drumgen.tools.bench import preview_figures

        report["previews"] = preview_figures()
    if not args.no_api:
        try:
            report["api"] = run_api_bench(checkpoint=args.checkpoint, repeats=max(3, args.repeats // 2))
        except (RuntimeError, OSError, ValueError) as exc:  # the app did not come up: keep the model figures
            report["api"] = {"error": str(exc)}
    print(json.dumps(report, indent=2))
    return 0


def _cmd_loadtest(args: argparse.Namespace) -> int:
    from drumgen.tools.loadtest import run_loadtest, run_sessions

    if args.sessions:
        print(json.dumps(run_sessions(sessions=args.sessions, files_max_age_s=args.session_age), indent=2))
        return 0
    print(json.dumps(run_loadtest(users=args.users, requests=args.requests, duration=args.duration, bars=args.bars,
                                  queue_bound=args.queue_bound, settle_s=args.settle), indent=2))
    return 0


def _help(limit: Any) -> str:
    """What a limit allows, for --help (argparse needs a literal percent sign doubled)."""
    return limit.allowed().replace("%", "%%")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error: ``error: argument --bars: invalid int value: '2.5' (...)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


MODE_HELP = {
    "humanize": "give a drum MIDI file a style's feel (every note kept); one JSON line per file",
    "continue": "continue a drum MIDI file with new bars in a style; one JSON line per file",
    "reroll": "keep some voices of a drum MIDI file exactly and play the rest anew; one JSON line per file",
    "drumify": "drums whose kick follows any part's rhythm (a bass line, a melody); one JSON line per file",
}


def _add_mode_parsers(sub: Any) -> None:
    """The four modes on an uploaded file, with generate's kit, feel, export and audio options (and its
    sampling options where something is sampled)."""
    from drumgen.uploads import DEFAULT_KEEP

    preset = " (default: the preset's)"
    for mode, text in MODE_HELP.items():
        m = sub.add_parser(mode, help=text)
        m.add_argument("--input", type=Path, required=True, help="the MIDI file (.mid or .midi, at most 2 MB)")
        m.add_argument("--style", required=True, help="preset id or name, e.g. j_dilla, 'Metro Boomin', funk")
        m.add_argument("--seed", type=int, default=None, help="seed; variation i uses seed+i (default: random)")
        m.add_argument("--count", type=int, default=1, help=f"number of variations: {_help(COUNT)} (default 1)")
        m.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default ./out)")
        if mode == "humanize":
            m.add_argument("--quantize", action="store_true", help="snap a played file to the grid first")
        if mode == "continue":
            m.add_argument("--bars", type=int, default=4, help=f"new bars: {_help(BARS)} (default 4)")
            m.add_argument("--only-new", action="store_true", help="write the new bars alone (default: the file "
                           "followed by them)")
        if mode == "reroll":
            m.add_argument("--keep", default=",".join(DEFAULT_KEEP), help="voices kept exactly, comma-separated, of "
                           "kick, snare, closed_hat (or hat), open_hat, low_tom, mid_tom, high_tom (or toms), crash, "
                           f"ride (default {','.join(DEFAULT_KEEP)})")
        m.add_argument("--amount", "--humanize", dest="humanize", type=float, default=1.0,
                       help=f"humanize amount: {_help(HUMANIZE)} (default 1)")
        m.add_argument("--swing", type=float, default=None, help=f"swing: {_help(SWING)}{preset}")
        m.add_argument("--kit", default=None, help=f"audio kit: {_help(KIT)}{preset}")
        if mode != "humanize":
            m.add_argument("--temperature", type=float, default=None, help=f"{_help(TEMPERATURE)}{preset}")
            m.add_argument("--top-k", type=int, default=None, help=f"{_help(TOP_K)}{preset}")
            m.add_argument("--top-p", type=float, default=None, help=f"{_help(TOP_P)}{preset}")
            m.add_argument("--variation", type=float, default=None,
                           help=f"bar-to-bar change: {_help(VARIATION)}{preset}")
            m.add_argument("--fill-every", type=int, default=None, help=f"{_help(FILL_EVERY)}{preset}")
        m.add_argument("--drum-map", default="gm", help="note numbers of the target instrument (list: python -m "
                       "drumgen drum-maps; default gm)")
        m.add_argument("--split-tracks", action="store_true", help="one MIDI track per kit piece (Kick, Snare, ...)")
        m.add_argument("--no-audio", action="store_true", help="write MIDI only")
        m.add_argument("--audio-format", choices=AUDIO_FORMATS, default="ogg", help="default ogg")
        m.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE,
                       help=f"{_help(SAMPLE_RATE)} (default {DEFAULT_SAMPLE_RATE})")
        # humanizing samples nothing: its sampling controls are the preset's, and not options
        m.set_defaults(func=_cmd_mode, temperature=None, top_k=None, top_p=None, variation=None, fill_every=None)


def build_parser() -> argparse.ArgumentParser:
    from drumgen.tools.train import TrainConfig

    # the installed command names itself; otherwise the module form, as the README runs it
    prog = "drumgen" if Path(sys.argv[0]).name == "drumgen" else "python -m drumgen"
    p = _Parser(prog=prog, description="MidiDrumiGen drum-pattern generator")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("styles", help="print the style presets as JSON").set_defaults(func=_cmd_styles)
    sub.add_parser("drum-maps", help="print the drum-map presets (GM and DAW instruments) as JSON").set_defaults(
        func=_cmd_drum_maps)

    g = sub.add_parser("generate", help="write K .mid files (and audio) and print one JSON line per file")
    preset = " (default: the preset's)"
    g.add_argument("--style", required=True, help="preset id or name, e.g. j_dilla, 'Metro Boomin', funk")
    g.add_argument("--bars", type=int, default=4, help=f"length in bars: {_help(BARS)} (default 4)")
    g.add_argument("--tempo", type=float, default=None, help=f"BPM: {_help(TEMPO)}{preset}")
    g.add_argument("--seed", type=int, default=None, help="seed; variation i uses seed+i (default: random)")
    g.add_argument("--count", type=int, default=1, help=f"number of variations: {_help(COUNT)} (default 1)")
    g.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default ./out)")
    g.add_argument("--temperature", type=float, default=None, help=f"{_help(TEMPERATURE)}{preset}")
    g.add_argument("--top-k", type=int, default=None, help=f"{_help(TOP_K)}{preset}")
    g.add_argument("--top-p", type=float, default=None, help=f"{_help(TOP_P)}{preset}")
    g.add_argument("--humanize", type=float, default=1.0, help=f"humanize amount: {_help(HUMANIZE)} (default 1)")
    g.add_argument("--variation", type=float, default=None, help=f"bar-to-bar change: {_help(VARIATION)}{preset}")
    g.add_argument("--swing", type=float, default=None, help=f"swing: {_help(SWING)}{preset}")
    g.add_argument("--kit", default=None, help=f"{_help(KIT)}{preset}")
    g.add_argument("--fill-every", type=int, default=None, help=f"{_help(FILL_EVERY)}{preset}")
    g.add_argument("--drum-map", default="gm", help="note numbers of the target instrument, e.g. gm, ezdrummer_3, "
                   "superior_drummer_3 (list: python -m drumgen drum-maps; default gm)")
    g.add_argument("--split-tracks", action="store_true", help="one MIDI track per kit piece (Kick, Snare, ...)")
    g.add_argument("--no-audio", action="store_true", help="write MIDI only")
    g.add_argument("--audio-format", choices=AUDIO_FORMATS, default="ogg", help="default ogg")
    g.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE,
                   help=f"{_help(SAMPLE_RATE)} (default {DEFAULT_SAMPLE_RATE})")
    g.set_defaults(func=_cmd_generate)

    _add_mode_parsers(sub)

    d = TrainConfig()
    t = sub.add_parser("train", help="train the model on the Groove MIDI Dataset")
    t.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    t.add_argument("--out", type=Path, default=Path("checkpoints"), help="output folder (default checkpoints)")
    t.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    t.add_argument("--windows-per-epoch", type=int, default=d.windows_per_epoch, help=f"default {d.windows_per_epoch}")
    t.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    t.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    t.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    t.add_argument("--max-minutes", type=float, default=d.max_minutes,
                   help=f"warn when a run takes longer (it still stops by epochs; default {d.max_minutes})")
    t.add_argument("--n-layer", type=int, default=d.n_layer, help=f"default {d.n_layer}")
    t.add_argument("--n-head", type=int, default=d.n_head, help=f"default {d.n_head}")
    t.add_argument("--n-embd", type=int, default=d.n_embd, help=f"default {d.n_embd}")
    t.add_argument("--threads", type=int, default=d.threads, help="torch threads (default: torch's)")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="print JSON quality figures of the model on a dataset folder")
    e.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    e.add_argument("--split", default="validation", help="split of info.csv to score (default validation)")
    e.add_argument("--checkpoint", type=Path, default=None, help="default checkpoints/drumgen.pt")
    e.add_argument("--samples", type=int, default=1000, help="samples for the validity rate (default 1000)")
    e.add_argument("--grooves", type=int, default=12, help="16-bar grooves per genre and setting (default 12)")
    e.add_argument("--seed", type=int, default=0, help="default 0")
    e.set_defaults(func=_cmd_evaluate)

    c = sub.add_parser("calibrate", help="print each preset's variation (and each genre preset's micro-timing) "
                                            "that matches its genre's real grooves")
    c.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    c.add_argument("--split", default="validation", help="split of the real reference (default validation)")
    c.add_argument("--checkpoint", type=Path, default=None, help="default checkpoints/drumgen.pt")
    c.add_argument("--grooves", type=int, default=8, help="16-bar grooves per preset and rung (default 8)")
    c.set_defaults(func=_cmd_calibrate)

    b = sub.add_parser("bench", help="print JSON speed figures")
    b.add_argument("--checkpoint", type=Path, default=None, help="default checkpoints/drumgen.pt")
    b.add_argument("--repeats", type=int, default=15, help="runs per figure (median; default 15)")
    b.add_argument("--previews", action="store_true",
                   help="also measure every style's preview (size, loudness, peaks, encode time; several minutes)")
    b.add_argument("--no-api", action="store_true",
                   help="skip the app figures (start-up, /generate round trips through gradio_client, memory)")
    b.set_defaults(func=_cmd_bench)

    lt = sub.add_parser("loadtest", help="start the app on loopback and drive it with concurrent API users")
    lt.add_argument("--users", type=int, default=16, help="concurrent gradio_client users (default 16)")
    lt.add_argument("--requests", type=int, default=1000, help="requests in all (default 1000)")
    lt.add_argument("--duration", type=float, default=600, help="time cap in seconds (default 600)")
    lt.add_argument("--bars", type=int, default=4, help="bars per request (default 4)")
    lt.add_argument("--queue-bound", type=int, default=32, help="the app's queue max_size, for the report")
    lt.add_argument("--settle", type=float, default=0, help="seconds to wait after the load before measuring the "
                    "temp folder again (default 0: no second measurement)")
    lt.add_argument("--sessions", type=int, default=0, help="instead: this many one-shot sessions, and the app's "
                    "memory before, right after and once they expired")
    lt.add_argument("--session-age", type=int, default=10, help="with --sessions: the app's file and session "
                    "lifetime in seconds (default 10)")
    lt.set_defaults(func=_cmd_loadtest)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or args.command == "train" else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line here, the traceback with --verbose
        if args.verbose:
            log.exception("unexpected error")
        print(f"error: unexpected {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return 1
