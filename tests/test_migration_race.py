"""Several workers started at once (docs/operations.md, section 9: a second unit, or
`docker compose up --scale intake=2` on a new database) each bring the schema up to date
when they start: one migrates, the others wait for it and find the schema done."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 4
# `intake db upgrade`, its imports done first (then it says it is ready), started when
# the go file appears: the workers' migrations begin within milliseconds of each other
AT_THE_SIGNAL = """
import sys, time
from pathlib import Path
from intake.cli import main
go, ready = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.005)
sys.exit(main(["db", "upgrade"]))
"""


def test_workers_starting_together_all_find_the_schema_up_to_date(database_url, tmp_path):
    go = tmp_path / "go"
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    env.update(PYTHONPATH=str(ROOT), INTAKE_DATA_DIR=str(tmp_path / "data"), INTAKE_DATABASE_URL=database_url)
    ready = [tmp_path / f"ready-{n}" for n in range(WORKERS)]
    workers = [subprocess.Popen([sys.executable, "-c", AT_THE_SIGNAL, str(go), str(mark)], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for mark in ready]
    try:
        deadline = time.monotonic() + 300
        while not all(mark.exists() for mark in ready):
            assert all(worker.poll() is None for worker in workers), "a worker ended before the signal"
            assert time.monotonic() < deadline, "the workers did not get ready"
            time.sleep(0.02)
        go.touch()
        said = [worker.communicate(timeout=300) for worker in workers]
        failed = [(worker.returncode, err) for worker, (_, err) in zip(workers, said) if worker.returncode != 0]
        assert failed == []
        engine = create_engine(database_url)
        try:
            assert {"messages", "outbox", "alembic_version"} <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
