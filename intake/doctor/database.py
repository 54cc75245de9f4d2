"""The tracking database: reachable, and migrated to the newest Alembic revision. Read
only: nothing is created or upgraded here (`intake db upgrade` does that)."""

from __future__ import annotations

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from intake import store
from intake.doctor.model import Check, Context, failed, passed

NAME, TITLE = "database", "数据库（可连接、已迁移到最新版本）"
MIGRATIONS = Path(store.__file__).parent / "migrations"
CONNECT_TIMEOUT = 10  # seconds: a server that does not answer is reported, not waited for


def check_database(context: Context) -> Check:
    settings = context.settings
    assert settings is not None
    url = make_url(settings.url)
    shown = url.render_as_string(hide_password=True)
    setting = "INTAKE_DATABASE_URL" if settings.database_url else "INTAKE_DATA_DIR"
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not path.is_file():
            return failed(NAME, TITLE, f"数据库文件 {path} 尚不存在：请运行 intake db upgrade 建立数据库"
                          f"（或核对 {setting}）")
    engine = create_engine(url, **_options(url.get_backend_name()))
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as err:
        return failed(NAME, TITLE, f"无法连接数据库 {shown}：请确认数据库服务器正在运行，并核对 {setting} 中的地址、"
                      f"端口、用户、密码和库名。详情：{_first_line(err)}")
    finally:
        engine.dispose()
    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    if current == heads:
        return passed(NAME, TITLE, f"{shown} 可连接，结构为最新版本（{', '.join(sorted(heads))}）")
    if not current:
        return failed(NAME, TITLE, f"{shown} 可连接，但尚未建立表结构：请运行 intake db upgrade")
    known = {revision.revision for revision in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    if current - known:
        return failed(NAME, TITLE, f"{shown} 的结构版本 {', '.join(sorted(current))} 比本程序更新：请升级本程序，"
                      f"或核对 {setting} 是否指向了别的安装的数据库")
    return failed(NAME, TITLE, f"{shown} 的结构版本为 {', '.join(sorted(current))}，不是最新的 "
                  f"{', '.join(sorted(heads))}：请运行 intake db upgrade")


def _options(backend: str) -> dict[str, object]:
    if backend == "postgresql":
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    return {"connect_args": {"timeout": CONNECT_TIMEOUT}}


def _first_line(err: SQLAlchemyError) -> str:
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
