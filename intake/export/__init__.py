"""`intake export DIR`: the current accepted projects for the expert panel.

DIR/<unit>/<course>/ holds each project's 视频, 文档 and 题库 under those stable names;
DIR/题库汇总.xlsx every project's questions; DIR/项目索引.xlsx one row per project and
each unit against its quota. Running it again brings DIR up to date: a file whose
size and SHA-256 are unchanged is left as it is (an untouched project is not even
unpacked again), a project superseded since is removed, and nothing outside DIR is
touched (intake.export.tree)."""

from __future__ import annotations

from intake.export.run import ExportResult, export

__all__ = ["ExportResult", "export"]
