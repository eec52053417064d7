"""Coverage-guided fuzzing of what a node parses from outside (``make fuzz``).

One target per surface, each a ``one_input(bytes)`` function that raises only on a crash
(:mod:`tools.fuzz.harness`): the codec (``fuzz_codec``), the p2p handshake and frames
(``fuzz_p2p``), the RPC port's framing and requests (``fuzz_rpc``), the HTTP port's
requests (``fuzz_http``) and tx admission (``fuzz_tx``). :mod:`tools.fuzz.run` drives
them under atheris (``make fuzz``), replays a crash input, and writes the seed corpus;
``tests/test_fuzz.py`` replays the corpus and every crash found, and runs each target on
a few thousand inputs of the seeded mutator (:mod:`tools.fuzz.mutator`) without atheris.
"""
