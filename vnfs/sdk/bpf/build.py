"""Compile the datapath program: `python -m vnfs.sdk.bpf.build [--force]`.

The object goes to vnfs/sdk/bpf/build/flowtable.o (gitignored) and is rebuilt
only when flowtable.c or flowtable.h is newer. The compiler writes to a
temporary file that is renamed into place, so concurrent builds never leave a
half-written object for a loader to pick up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
SOURCES = (SOURCE_DIR / "flowtable.c", SOURCE_DIR / "flowtable.h")
BUILD_DIR = SOURCE_DIR / "build"
OBJECT = BUILD_DIR / "flowtable.o"


class BuildError(RuntimeError):
    """clang is missing or refused the program; the message carries its output."""


def _multiarch_include(compiler: str) -> list[str]:
    # <asm/types.h> lives in the multiarch directory (e.g. /usr/include/x86_64-linux-gnu),
    # which a -target bpf compilation does not search by itself.
    completed = subprocess.run(
        [compiler, "-print-multiarch"], capture_output=True, text=True, check=False
    )
    triple = completed.stdout.strip()
    directory = Path("/usr/include") / triple
    return [f"-I{directory}"] if triple and directory.is_dir() else []


def compile_command(output: Path, compiler: str = "clang") -> list[str]:
    return [
        compiler,
        "-O2",
        "-g",
        "-Wall",
        "-Werror",
        "-target",
        "bpf",
        # v3: atomic OR for tcp_flags_seen, 32-bit jumps
        "-mcpu=v3",
        *_multiarch_include(compiler),
        "-c",
        str(SOURCE_DIR / "flowtable.c"),
        "-o",
        str(output),
    ]


def is_stale(output: Path = OBJECT) -> bool:
    if not output.exists():
        return True
    built = output.stat().st_mtime_ns
    return any(source.stat().st_mtime_ns > built for source in SOURCES)


def build(output: Path = OBJECT, force: bool = False) -> Path:
    """Compile if the object is missing or older than its sources; return its path."""
    if not force and not is_stale(output):
        return output
    compiler = shutil.which("clang")
    if compiler is None:
        raise BuildError("clang is not installed (apt-get install clang llvm libbpf-dev)")
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".flowtable-", suffix=".o", dir=output.parent)
    os.close(fd)
    try:
        completed = subprocess.run(
            compile_command(Path(temporary), compiler), capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            raise BuildError(f"clang failed:\n{completed.stderr.strip()}")
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--output", type=Path, default=OBJECT)
    args = parser.parse_args(argv)
    try:
        path = build(args.output, force=args.force)
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
