"""deploy/intake.example.toml and deploy/intake.env.example, read by the real settings
loader: an unknown key fails, and a setting the loader knows that the example does not
explain fails too (so a new setting cannot go undocumented)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from intake.kernel.errors import ConfigError
from intake.settings import KNOWN, _secret, load_settings, read_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
EXAMPLE = DEPLOY / "intake.example.toml"
ENV_EXAMPLE = DEPLOY / "intake.env.example"
# a setting line, set ("key = …") or left at its default ("# key = …", exactly one space)
SETTING_LINE = re.compile(r"^(# )?([a-z][a-z0-9_]*) = ")


def setting_name(key: str) -> str:
    """`imap_password_file` documents `imap_password`."""
    base = key.removesuffix("_file")
    return base if key.endswith("_file") and _secret(base) else key


def example_lines() -> list[str]:
    return EXAMPLE.read_text(encoding="utf-8").splitlines()


def test_the_example_loads_with_the_real_loader_and_means_163():
    settings = load_settings(str(EXAMPLE), environ={})
    assert (settings.imap_host, settings.imap_port, settings.imap_ssl) == ("imap.163.com", 993, True)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == ("smtp.163.com", 465, "ssl")
    assert settings.imap_user and settings.imap_user.endswith("@163.com")
    assert settings.imap_password is None and settings.smtp_password is None  # secrets stay out of it
    assert settings.maildir is None  # IMAP, not a Maildir


def test_every_setting_the_loader_knows_is_in_the_example():
    documented = {setting_name(match.group(2)) for line in example_lines()
                  if (match := SETTING_LINE.match(line))}
    missing = KNOWN - documented
    assert not missing, f"deploy/intake.example.toml does not explain {sorted(missing)}"


def test_the_settings_left_at_their_defaults_load_too(tmp_path):
    """Uncommented, the "# key = …" lines are keys the loader knows, with values it takes
    (each secret file pointing at a file of this test instead of /etc/intake/secrets/)."""
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    lines = [re.sub(r"^# (?=[a-z][a-z0-9_]* = )", "", line) for line in example_lines()]
    lines = [re.sub(r'^([a-z0-9_]+_file) = ".*"$', rf'\1 = "{secret}"', line) for line in lines]
    uncommented = tmp_path / "all.toml"
    uncommented.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data, overrides = read_config(str(uncommented))
    assert {setting_name(key) for key in data} == KNOWN
    assert overrides == {}
    settings = load_settings(str(uncommented), environ={})
    assert settings.imap_password == settings.baidu_cookie == "s3cret"
    assert settings.database_url and settings.maildir and settings.reply_since and settings.host_map


def test_every_setting_is_explained_by_a_comment_above_it():
    lines = example_lines()
    for number, line in enumerate(lines):
        if SETTING_LINE.match(line):
            above = number - 1
            while above >= 0 and SETTING_LINE.match(lines[above]):
                above -= 1  # a group of settings shares one explanation
            prose = lines[above] if above >= 0 else ""
            assert prose.startswith("# ") and len(prose) > 12, f"line {number + 1}: {line!r} is not explained"


def test_an_unknown_key_in_the_example_would_fail(tmp_path):
    broken = tmp_path / "intake.toml"
    broken.write_text(EXAMPLE.read_text(encoding="utf-8").replace("imap_folder =", "imap_foldr ="),
                      encoding="utf-8")
    with pytest.raises(ConfigError, match="imap_foldr"):
        load_settings(str(broken), environ={})


def env_file(text: str) -> tuple[dict[str, str], set[str]]:
    """The variables an EnvironmentFile sets, and the names also shown commented out."""
    active: dict[str, str] = {}
    shown: set[str] = set()
    for line in text.splitlines():
        match = re.match(r"^(#)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            shown.add(match.group(2))
            if not match.group(1):
                active[match.group(2)] = match.group(3).strip().strip('"')
    return active, shown


def test_the_environment_file_names_only_settings_and_loads():
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    _, shown = env_file(text)
    for name in shown - {"PGPASSWORD"}:
        setting = name.removeprefix("INTAKE_").lower()
        assert name.startswith("INTAKE_") and setting_name(setting) in KNOWN, name
    # the passwords' lines, uncommented as section 2's environment route has them
    chosen, _ = env_file(re.sub(r"^#(INTAKE_(IMAP|SMTP)_PASSWORD=)", r"\1", text, flags=re.M))
    assert {"INTAKE_IMAP_PASSWORD", "INTAKE_SMTP_PASSWORD"} <= set(chosen)
    settings = load_settings(str(EXAMPLE), environ=chosen)
    assert settings.imap_password == chosen["INTAKE_IMAP_PASSWORD"]
    assert settings.smtp_password == chosen["INTAKE_SMTP_PASSWORD"]


def test_the_guides_deadline_for_this_year_loads(tmp_path):
    """docs/operations.md, "The deadline day": the example without its `policy = …` line,
    with a [policy.deadline] table at its end, moves the deadline (Beijing time)."""
    from intake.kernel.policy import load_policy

    lines = [line for line in example_lines() if not line.startswith("policy = ")]
    settings_file = tmp_path / "intake.toml"
    settings_file.write_text("\n".join([*lines, "[policy.deadline]", "at = 2026-12-20T23:59:59"]) + "\n",
                             encoding="utf-8")
    settings = load_settings(str(settings_file), environ={})
    deadline = load_policy(settings.policy, settings.policy_overrides).deadline
    assert deadline.isoformat() == "2026-12-20T23:59:59+08:00"
    with_policy_line = tmp_path / "both.toml"  # why the guide says to remove the line
    with_policy_line.write_text(EXAMPLE.read_text(encoding="utf-8") + "[policy.deadline]\nat = 2026-12-20T23:59:59\n",
                                encoding="utf-8")
    with pytest.raises(ConfigError):
        load_settings(str(with_policy_line), environ={})


def test_the_environment_file_overrides_a_secret_file_named_in_the_toml(tmp_path):
    """The contract: environment variables override the file. A password mended in
    /etc/intake/intake.env must win over an `imap_password_file` left in the TOML."""
    secret = tmp_path / "imap_password"
    secret.write_text("old-code-in-file\n", encoding="utf-8")
    settings_file = tmp_path / "intake.toml"
    settings_file.write_text(f'imap_password_file = "{secret}"\nsmtp_password_file = "{secret}"\n', encoding="utf-8")
    settings = load_settings(str(settings_file), environ={"INTAKE_IMAP_PASSWORD": "new-code-in-env"})
    assert settings.imap_password == "new-code-in-env"
    assert settings.smtp_password == "old-code-in-file"  # not overridden: the file's
    other = tmp_path / "other"
    other.write_text("code-in-env-file\n", encoding="utf-8")
    settings = load_settings(str(settings_file), environ={"INTAKE_IMAP_PASSWORD": "x", "INTAKE_IMAP_PASSWORD_FILE": str(other)})
    assert settings.imap_password == "code-in-env-file"  # INTAKE_*_FILE, then INTAKE_*, then the TOML


def test_the_shipped_environment_file_leaves_the_passwords_to_the_chosen_route(tmp_path):
    """docs/operations.md installs deploy/intake.env.example as it is and then names the
    password files in the TOML: a placeholder left active would override them."""
    active, shown = env_file(ENV_EXAMPLE.read_text(encoding="utf-8"))
    assert not [name for name in active if _secret(name.removeprefix("INTAKE_").lower())]
    assert {"INTAKE_IMAP_PASSWORD", "INTAKE_SMTP_PASSWORD"} <= shown
