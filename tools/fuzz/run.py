"""``make fuzz``'s driver: each target under atheris for a bounded time, then a summary.

``python -m tools.fuzz.run --seconds 60 [TARGET ...]`` runs each target (default: all) in
a process of its own under atheris (libFuzzer's coverage-guided search, from the
committed corpus and regressions, with the target's dictionary), for ``--seconds`` each,
and prints per target the executions, the speed and the crashes found. A crash does not
stop the search: the harness keeps the first input of each kind of crash (its
exception's type and place, :func:`~tools.fuzz.harness.crash_signature`) under
``.fuzz/<target>/crashes/`` and goes on. Each is printed with the command that replays
it; the exit status is 1 when any was found.

Other uses:

- ``--replay TARGET FILE ...``: run the inputs through the target, print each crash's
  traceback (exit status 1 when one crashes);
- ``--write-seeds``: write every target's seeds (``seeds()``) into ``corpus/<target>/``;
- ``--child TARGET``: the atheris process itself (what the driver starts).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from tools.fuzz.harness import FUZZ_ROOT, Target, crash_signature, input_files, input_name

__all__ = ["TARGET_MODULES", "load_target", "main"]

#: Target name -> its module, in the order a campaign runs them.
TARGET_MODULES = {
    "codec": "tools.fuzz.fuzz_codec",
    "p2p": "tools.fuzz.fuzz_p2p",
    "rpc": "tools.fuzz.fuzz_rpc",
    "http": "tools.fuzz.fuzz_http",
    "tx": "tools.fuzz.fuzz_tx",
}
REPO = FUZZ_ROOT.parent.parent
WORK = REPO / ".fuzz"
#: The longest input libFuzzer makes (the HTTP target needs room for 5,000 digits).
MAX_LEN = 16 * 1024
#: The packages whose code atheris instruments for coverage.
INSTRUMENTED = ("appchaind", "p2p", "config", "margin", "orderbook", "h11")
#: Seconds one input may take before libFuzzer calls it a hang (and stops).
INPUT_TIMEOUT_S = 20


def load_target(name: str) -> Target:
    target: Target = importlib.import_module(TARGET_MODULES[name]).TARGET
    return target


def _replay_command(name: str, path: Path) -> str:
    return f".venv/bin/python -m tools.fuzz.run --replay {name} {path}"


# ---------------------------------------------------------------------------- the child


def _dictionary(target: Target, path: Path) -> Path | None:
    """The target's tokens as a libFuzzer dictionary file (None when it has none)."""
    if not target.tokens:
        return None
    lines = ['"' + "".join(f"\\x{b:02x}" for b in token) + '"' for token in target.tokens]
    path.write_text("\n".join(lines) + "\n")
    return path


def _child(name: str, seconds: int) -> None:
    import atheris  # the fuzz extra: pip install -e '.[fuzz]'

    # Coverage is what the project's code and the parsers it relies on do (instrumenting
    # every loaded module instead takes minutes and guides the search no better).
    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        target = load_target(name)
    target.seeds()  # build every fixture before the clock starts
    work = WORK / name
    crashes = work / "crashes"
    corpus = work / "corpus"
    for folder in (crashes, corpus):
        folder.mkdir(parents=True, exist_ok=True)
    seen = {line.split("\t")[0] for line in _signatures(crashes)}

    def test_one_input(data: bytes) -> None:
        try:
            target.one_input(data)
        except Exception as exc:  # every crash is kept, once per kind, and the search goes on
            signature = crash_signature(exc)
            if signature in seen:
                return
            seen.add(signature)
            path = crashes / input_name(data)
            path.write_bytes(data)
            with (crashes / "signatures.tsv").open("a") as out:
                out.write(f"{signature}\t{path.name}\n")
            (crashes / f"{path.name}.txt").write_text("".join(traceback.format_exception(exc)))
            print(f"\nCRASH {name}: {signature}: {path}", file=sys.stderr, flush=True)

    args = [
        sys.argv[0],
        f"-max_total_time={seconds}",
        f"-timeout={INPUT_TIMEOUT_S}",
        f"-max_len={MAX_LEN}",
        "-len_control=0",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
        f"-artifact_prefix={work}/",
    ]
    dictionary = _dictionary(target, work / "tokens.dict")
    if dictionary is not None:
        args.append(f"-dict={dictionary}")
    args += [str(corpus), str(target.corpus_dir)]
    if target.regressions_dir.is_dir():
        args.append(str(target.regressions_dir))
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


def _signatures(crashes: Path) -> list[str]:
    path = crashes / "signatures.tsv"
    return path.read_text().splitlines() if path.exists() else []


# ---------------------------------------------------------------------------- the driver


@dataclass
class Outcome:
    target: str
    executions: int
    seconds: float
    crashes: list[tuple[str, Path]]
    died: str | None


def _campaign_one(name: str, seconds: int) -> Outcome:
    work = WORK / name
    crashes = work / "crashes"
    if crashes.exists():
        shutil.rmtree(crashes)
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "log.txt"
    started = time.monotonic()
    with log_path.open("w") as log:
        try:
            process = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tools.fuzz.run",
                    "--child",
                    name,
                    "--seconds",
                    str(seconds),
                ],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=seconds + 120,
                check=False,
            )
            code: int | None = process.returncode
        except subprocess.TimeoutExpired:
            code = None
    elapsed = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    found = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text)
    executions = int(found[-1]) if found else 0
    crash_list = []
    for line in _signatures(crashes):
        signature, _, file_name = line.partition("\t")
        crash_list.append((signature, crashes / file_name))
    died = None
    if code is None:
        died = f"did not stop within {seconds + 120} s (killed); see {log_path}"
    elif code != 0:
        artifacts = sorted(
            p for p in work.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-"))
        )
        where = f"; input: {artifacts[-1]}" if artifacts else ""
        died = f"exited with status {code} (a hang, a memory blow-up or a fatal signal){where}; see {log_path}"
    return Outcome(name, executions, elapsed, crash_list, died)


def _campaign(names: list[str], seconds: int) -> int:
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz: atheris is not installed; run: .venv/bin/python -m pip install -e '.[fuzz]'")
        return 2
    outcomes = []
    for name in names:
        print(f"fuzz: {name}: {seconds} s under atheris ...", flush=True)
        outcome = _campaign_one(name, seconds)
        outcomes.append(outcome)
        print(
            f"fuzz: {name}: {outcome.executions} executions "
            f"({outcome.executions / max(outcome.seconds, 1e-9):.0f}/s), "
            f"{len(outcome.crashes)} crash(es)" + (f", {outcome.died}" if outcome.died else ""),
            flush=True,
        )
    print("\nfuzz summary (target, executions, crashes):")
    failed = False
    for o in outcomes:
        print(
            f"  {o.target:6} {o.executions:>10} {len(o.crashes):>3}" + (" DIED" if o.died else "")
        )
        for signature, path in o.crashes:
            failed = True
            print(
                f"    {signature}\n      input: {path}\n      replay: {_replay_command(o.target, path)}"
            )
        if o.died:
            failed = True
            print(f"    {o.died}")
    total = sum(o.executions for o in outcomes)
    crashes = sum(len(o.crashes) for o in outcomes)
    print(f"fuzz: {len(outcomes)} targets, {total} executions, {crashes} crash(es)")
    return 1 if failed else 0


def _replay(name: str, paths: list[Path]) -> int:
    target = load_target(name)
    failed = 0
    for path in paths:
        try:
            target.one_input(path.read_bytes())
        except Exception as exc:  # what the replay is for: show the crash
            failed += 1
            print(f"{path}: CRASH {crash_signature(exc)}")
            traceback.print_exception(exc)
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


def _write_seeds(names: list[str]) -> int:
    for name in names:
        target = load_target(name)
        folder = target.corpus_dir
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for seed_name, data in sorted(target.seeds().items()):
            (folder / seed_name).write_bytes(data)
        print(f"{folder.relative_to(REPO)}: {len(input_files(folder))} seeds")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fuzz.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "targets", nargs="*", help=f"targets (default all: {', '.join(TARGET_MODULES)})"
    )
    parser.add_argument("--seconds", type=int, default=60, help="seconds per target (default 60)")
    parser.add_argument(
        "--replay", metavar="TARGET", help="replay the FILE arguments through TARGET"
    )
    parser.add_argument("--write-seeds", action="store_true", help="write the seed corpus")
    parser.add_argument("--child", metavar="TARGET", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.seconds)
        return 0
    if args.replay:
        return _replay(args.replay, [Path(p) for p in args.targets])
    names = args.targets or list(TARGET_MODULES)
    unknown = [n for n in names if n not in TARGET_MODULES]
    if unknown:
        parser.error(
            f"unknown target(s) {', '.join(unknown)}; targets: {', '.join(TARGET_MODULES)}"
        )
    if args.write_seeds:
        return _write_seeds(names)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    return _campaign(names, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
