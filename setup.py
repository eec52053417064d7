"""Build hook: compile the deterministic cores (appchaind.native.NATIVE_MODULES) with mypyc.

Everything else is in pyproject.toml. The compiled modules land next to their sources, and
appchaind/_native_build.json records the SHA-256 of each source compiled, so that a later
edit makes the package fall back to the source until it is rebuilt (see appchaind/native.py).
Set APPCHAIND_PURE_PYTHON=1 to install without compiling; without a C compiler or mypyc
the install also goes on, pure Python, with a warning.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _native():  # the list of modules lives in the package; load it without importing it
    spec = importlib.util.spec_from_file_location("_native", ROOT / "appchaind" / "native.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


native = _native()


class BuildExt(build_ext):
    """build_ext that records what it compiled, and survives a missing compiler."""

    def run(self):
        try:
            super().run()
        except Exception as error:  # no compiler, compile error: install pure Python
            print(f"warning: compiling the cores failed, installing pure Python: {error}")
            return
        modules = native.NATIVE_MODULES + native.BUILD_INPUTS
        record = {m: native.source_digest(m) for m in modules}
        targets = [native.BUILD_RECORD]
        if not self.inplace:
            targets.append(Path(self.build_lib) / "appchaind" / native.BUILD_RECORD.name)
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def _extensions():
    if os.environ.get(native.PURE_ENV, "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("warning: mypyc is not installed; installing pure Python", file=sys.stderr)
        return []
    sources = [str(native.source_path(m).relative_to(ROOT)) for m in native.NATIVE_MODULES]
    return mypycify(sources, opt_level="3")


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
