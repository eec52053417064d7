"""Runs simulator seeds until time is up or a property breaks.

    python -m appchaind.consensus.sim --seconds 600          # many seeds, all fault mixes
    python -m appchaind.consensus.sim --seed 1234 --mix chaos  # replay one seed

Seed ``s`` runs the fault mix ``MIX_ORDER[s % len(MIX_ORDER)]`` unless ``--mix``
is given. At the first violation it prints the seed and the command that
replays it, and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time

from appchaind.consensus.config import Mutation
from appchaind.consensus.sim.faults import MIXES
from appchaind.consensus.sim.world import SimResult, run_seed

MIX_ORDER = tuple(MIXES)


def mix_for(seed: int, mix: str | None) -> str:
    return mix if mix is not None else MIX_ORDER[seed % len(MIX_ORDER)]


def replay_command(result: SimResult, mutation: Mutation, real_signatures: bool) -> str:
    command = f"python -m appchaind.consensus.sim --seed {result.seed} --mix {result.mix}"
    if mutation is not Mutation.NONE:
        command += f" --mutation {mutation.value}"
    if real_signatures:
        command += " --real-signatures"
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appchaind.consensus.sim", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="wall-clock seconds to run seeds for"
    )
    parser.add_argument("--seed", type=int, help="run only this seed (replay)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed of a timed run")
    parser.add_argument("--mix", choices=MIX_ORDER, help="fault mix (default: chosen by the seed)")
    parser.add_argument(
        "--mutation", choices=[m.value for m in Mutation], default=Mutation.NONE.value
    )
    parser.add_argument(
        "--real-signatures", action="store_true", help="sign with ed25519 instead of hashes"
    )
    args = parser.parse_args(argv)
    mutation = Mutation(args.mutation)

    if args.seed is not None:
        result = run_seed(
            args.seed,
            mix_for(args.seed, args.mix),
            mutation=mutation,
            real_signatures=args.real_signatures,
        )
        print(
            f"seed {result.seed} mix {result.mix}: {result.validators} validators "
            f"({result.byzantine} byzantine), {result.heights_decided} heights decided, "
            f"{result.faults_injected} faults injected, {result.messages_delivered} messages, "
            f"{result.virtual_ms} virtual ms"
        )
        if result.violation:
            print(f"VIOLATION: {result.violation}")
            return 1
        print("no violation")
        return 0

    started = time.monotonic()
    last_report = started
    seeds = heights = faults = 0
    per_mix = dict.fromkeys(MIX_ORDER if args.mix is None else (args.mix,), 0)
    seed = args.first_seed
    while time.monotonic() - started < args.seconds:
        result = run_seed(
            seed, mix_for(seed, args.mix), mutation=mutation, real_signatures=args.real_signatures
        )
        seeds += 1
        per_mix[result.mix] += 1
        heights += result.heights_decided
        faults += result.faults_injected
        if result.violation:
            print(f"VIOLATION at seed {result.seed} (mix {result.mix}): {result.violation}")
            print(f"replay with: {replay_command(result, mutation, args.real_signatures)}")
            return 1
        now = time.monotonic()
        if now - last_report >= 5.0:
            last_report = now
            elapsed = now - started
            print(
                f"{elapsed:7.1f}s  seeds {seeds} ({seeds / elapsed:.1f}/s)  heights decided {heights} "
                f"({heights / elapsed:.0f}/s)  faults injected {faults}  violations 0",
                flush=True,
            )
        seed += 1
    elapsed = time.monotonic() - started
    mixes = ", ".join(f"{name} {count}" for name, count in per_mix.items())
    print(
        f"done: {seeds} seeds in {elapsed:.1f}s ({seeds / elapsed:.1f}/s; {mixes}), "
        f"mutation {mutation.value}, {heights} heights decided "
        f"({heights / elapsed:.0f} simulated heights/s), {faults} faults injected, 0 violations"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
