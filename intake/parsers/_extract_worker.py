"""Run one patool extraction in a child process, so the parent can enforce limits.

patool calls its backend with no timeout and no size limit; the parent runs this
module in its own session with RLIMIT_FSIZE set, watches the output directory's
size and kills the whole process group when a limit is crossed.

Usage: python -m intake.parsers._extract_worker FORMAT PROGRAM ARCHIVE OUTDIR
       python -m intake.parsers._extract_worker --list-tar ARCHIVE
Exit 0 on success, 3 when a file passed the size limit, 1 when the backend failed
otherwise (its stderr is passed through).
The tar listing runs here too: tarfile decompresses the whole stream to list it,
so it needs the parent's timeout as much as an extraction does.
"""

import errno
import json
import sys
import tarfile

import patoolib
from patoolib.util import PatoolError

EXIT_FILE_TOO_LARGE = 3  # a write passed RLIMIT_FSIZE (Python ignores SIGXFSZ: EFBIG instead)


def _file_too_large(err: BaseException | None) -> bool:
    while err is not None:
        if isinstance(err, OSError) and err.errno == errno.EFBIG:
            return True
        err = err.__cause__ or err.__context__
    return False


def list_tar(archive: str) -> int:
    try:
        with tarfile.open(archive) as bundle:
            for member in bundle:
                print(json.dumps({
                    "name": member.name, "size": member.size, "dir": member.isdir(),
                    "link": member.issym() or member.islnk() or member.isdev() or member.isfifo(),
                }, ensure_ascii=True))
    except (tarfile.TarError, OSError, EOFError, ValueError) as err:
        print(f"tarfile: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--list-tar"]:
        return list_tar(argv[1])
    fmt, program, archive, outdir = argv
    try:
        patoolib.extract_archive(
            archive, verbosity=-1, outdir=outdir, program=program,
            interactive=False, format=fmt,
        )
    except PatoolError as err:
        print(f"patool: {err}", file=sys.stderr)
        return EXIT_FILE_TOO_LARGE if _file_too_large(err) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
