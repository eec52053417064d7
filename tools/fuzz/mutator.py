"""A seeded byte mutator in plain Python: the fuzz targets' inputs without atheris.

libFuzzer's kinds of change, without its coverage feedback: flip a bit, set a byte to a
boundary value (msgpack's type markers among them), insert or overwrite a token of the
target's dictionary, insert random bytes, delete, duplicate or swap a range, splice two
inputs, truncate. Each input is one to four such changes to a seed, or to an input made
before. The same seed gives the same inputs on every machine, so a failing run of the
test suite is replayed exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

__all__ = ["mutations"]

#: Bytes worth trying anywhere: boundaries, and msgpack's markers (nil, false/true, bin,
#: ints of every width, str, array and map of every width, the fix* ranges' edges).
INTERESTING = bytes(
    [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xC0, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xCA, 0xCB]
    + [0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD3, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF]
    + [0x90, 0x9F, 0x80, 0x8F, 0xA0, 0xBF, 0xE0]
)
#: Kept inputs to splice from and mutate again, at most.
_POOL = 256


def _mutate_once(
    data: bytearray, rng: random.Random, tokens: Sequence[bytes], other: bytes
) -> None:
    n = len(data)
    op = rng.randrange(10)
    pos = rng.randrange(n + 1)
    if op == 0 and n:
        data[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif op == 1 and n:
        data[rng.randrange(n)] = rng.choice(INTERESTING)
    elif op == 2 and tokens:
        token = rng.choice(tokens)
        if rng.random() < 0.5:
            data[pos:pos] = token
        else:
            data[pos : pos + len(token)] = token
    elif op == 3:
        data[pos:pos] = rng.randbytes(rng.randint(1, 8))
    elif op == 4 and n:
        del data[pos : pos + rng.randint(1, 16)]
    elif op == 5 and n:
        start = rng.randrange(n)
        chunk = data[start : start + rng.randint(1, 64)]
        data[pos:pos] = chunk * rng.choice((1, 2, 8, 64))
    elif op == 6 and other:
        start = rng.randrange(len(other))
        data[pos:] = other[start:]
    elif op == 7:
        del data[pos:]
    elif op == 8 and n >= 2:
        i, j = rng.randrange(n), rng.randrange(n)
        data[i], data[j] = data[j], data[i]
    elif n:
        data[rng.randrange(n)] = rng.randrange(256)


def mutations(
    seeds: Sequence[bytes], count: int, *, seed: int, tokens: Sequence[bytes] = ()
) -> Iterator[bytes]:
    """``count`` inputs made from ``seeds`` (each seed itself first), reproducible from
    ``seed``."""
    rng = random.Random(seed)
    pool = [bytes(s) for s in seeds] or [b""]
    made = 0
    for s in pool[:count]:
        made += 1
        yield s
    while made < count:
        base = bytearray(rng.choice(pool))
        for _ in range(rng.randint(1, 4)):
            _mutate_once(base, rng, tokens, rng.choice(pool))
        out = bytes(base)
        if len(pool) < _POOL:
            pool.append(out)
        else:
            pool[rng.randrange(len(seeds), _POOL)] = out
        made += 1
        yield out
