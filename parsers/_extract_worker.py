"""Run one patool extraction in a child process, so the parent can enforce limits.

patool calls its backend with no timeout and no size limit; the parent runs this
module in its own session with RLIMIT_FSIZE set, watches the output directory's
size and kills the whole process group when a limit is crossed.

Usage: python -m parsers._extract_worker FORMAT PROGRAM ARCHIVE OUTDIR
Exit 0 on success, 1 when the backend failed (its stderr is passed through).
"""

import sys


def main(argv: list[str]) -> int:
    fmt, program, archive, outdir = argv
    import patoolib
    from patoolib.util import PatoolError

    try:
        patoolib.extract_archive(
            archive, verbosity=-1, outdir=outdir, program=program,
            interactive=False, format=fmt,
        )
    except PatoolError as err:
        print(f"patool: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
