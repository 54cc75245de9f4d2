"""pan.baidu.com's web API for a logged-in account (the cookie route, notes §3a):
gettemplatevariable, user/getinfo, create, share/transfer, share/taskquery, filemanager."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .baidu_web import DEAD_LIST, errno, request_id, share_state, verified
from .server import Request, Response, json_response
from .state import Account, Node, Share, Task
from .world import World


def parse_list(raw: str) -> list[Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def free_name(folder: Node, name: str) -> str:
    """ondup=newcopy: 'a.mp4' → 'a(1).mp4', as Baidu renames."""
    stem, dot, extension = name.rpartition(".") if "." in name else (name, "", "")
    number = 1
    while folder.child(candidate := f"{stem}({number}){dot}{extension}") is not None:
        number += 1
    return candidate


class AccountWeb:
    def __init__(self, world: World) -> None:
        self.world = world

    def routes(self) -> dict[str, Callable[[Request], Response]]:
        return {"/api/gettemplatevariable": self.template_variable, "/api/user/getinfo": self.user_info,
                "/api/create": self.create, "/share/transfer": self.transfer,
                "/share/taskquery": self.task_query, "/api/filemanager": self.file_manager}

    def account(self, request: Request) -> Account | None:
        return self.world.account_by_cookies(request.cookies)

    def template_variable(self, request: Request) -> Response:
        account = self.account(request)
        if account is None:
            return errno(-6)
        return json_response({"errno": 0, "request_id": request_id(), "result": {
            "bdstoken": account.bdstoken, "token": account.bdstoken[:16], "uk": account.uk,
            "isdocuser": 0, "servertime": int(time.time())}})

    def user_info(self, request: Request) -> Response:
        account = self.account(request)
        if account is None:
            return errno(2)  # getinfo's answer to a dead session (notes §4)
        return json_response({"errno": 0, "request_id": request_id(), "records": [
            {"uk": account.uk, "uname": account.name, "avatar_url": "", "priority_name": ""}]})

    def _checked(self, request: Request) -> tuple[Account | None, Response | None]:
        account = self.account(request)
        if account is None:
            return None, errno(-6)
        if request.query.get("bdstoken") != account.bdstoken:
            return None, errno(-6, err_msg="bdstoken mismatch")
        return account, None

    def create(self, request: Request) -> Response:
        account, refused = self._checked(request)
        if account is None:
            return refused  # type: ignore[return-value]
        path, isdir = request.arg("path"), request.arg("isdir", "0")
        if isdir != "1" or not path.startswith("/"):
            return errno(2)
        with self.world.lock:
            if account.find(path) is not None:
                return errno(-8)  # "已存在同名文件" ([Go]); xpan create says the same
            node = account.mkdir(path, self.world.ids.fs_id)
        return json_response({"errno": 0, "fs_id": node.fs_id, "path": path, "isdir": 1, "ctime": node.mtime,
                              "mtime": node.mtime, "status": 0, "category": 6, "name": node.name,
                              "request_id": request_id()})

    # ---- transfer (转存) ------------------------------------------------------------------
    def transfer(self, request: Request) -> Response:
        account, refused = self._checked(request)
        if account is None:
            return refused  # type: ignore[return-value]
        referer = request.header("Referer")
        if "/s/1" not in referer and "share/init?surl=" not in referer:  # "must be set" ([Py])
            return errno(2, err_msg="referer")
        query = request.query
        share = next((s for s in self.world.shares.values() if str(s.shareid) == query.get("shareid")
                      and str(s.owner_uk) == query.get("from")), None)
        if share is None or share.state != "ok":
            return errno(DEAD_LIST[share_state(share)])
        if not verified(request, share):
            return errno(-9)
        fsids = parse_list(request.arg("fsidlist"))
        found = [share.find_id(int(f)) for f in fsids or [] if str(f).isdigit()]
        if not fsids or len(found) != len(fsids) or None in found:
            return errno(2, err_msg="fsidlist")
        with self.world.lock:
            return self._copy(request, account, share, [f for f in found if f is not None])

    def _copy(self, request: Request, account: Account, share: Share, picked: list[tuple[str, Node]]) -> Response:
        target = account.find(request.arg("path"))
        if target is None or not target.isdir:
            return errno(2, show_msg="目标目录不存在")
        count = sum(node.file_count() for _, node in picked)
        if count > account.transfer_limit:
            return errno(12, info=[], task_id=0, target_file_nums=count,
                         target_file_nums_limit=account.transfer_limit, show_msg="转存文件数超过限制")
        if account.used + sum(node.total_size() for _, node in picked) > account.quota:
            return errno(-10, show_msg="容量不足")
        ondup = request.query.get("ondup", "")
        info, todo = [], []
        for path, node in picked:
            clash = target.child(node.name) is not None
            info.append({"path": path, "fsid": node.fs_id, "errno": -30 if clash and ondup != "newcopy" else 0})
            if not clash or ondup == "newcopy":
                todo.append((path, node, free_name(target, node.name) if clash else node.name))
        base = request.arg("path").rstrip("/")

        def finish() -> list[dict[str, Any]]:
            rows = []
            for path, node, name in todo:
                twin = node.copy(self.world.ids.fs_id, name)
                target.children.append(twin)
                rows.append({"from": path, "to": f"{base}/{name}", "from_fs_id": node.fs_id, "to_fs_id": twin.fs_id})
            return rows

        clashes = any(row["errno"] for row in info)
        if request.query.get("async") == "1" and not clashes:
            task = self.world.new_task(finish)
            return json_response({"errno": 0, "task_id": task.task_id, "info": [], "extra": {},
                                  "show_msg": "", "newno": "", "request_id": request_id()})
        rows = finish()
        return json_response({"errno": 12 if clashes else 0, "task_id": 0, "info": info, "extra": {"list": rows},
                              "show_msg": "", "newno": "", "request_id": request_id()})

    def task_query(self, request: Request) -> Response:
        task = self.world.tasks.get(int(request.query.get("taskid") or 0))
        if task is None:
            return errno(2, err_msg="no such task")
        self.world.advance(task)
        return json_response(task_answer(task))

    # ---- cleanup --------------------------------------------------------------------------------
    def file_manager(self, request: Request) -> Response:
        account, refused = self._checked(request)
        if account is None:
            return refused  # type: ignore[return-value]
        if request.query.get("opera") != "delete":
            return errno(2, err_msg="only delete is faked")
        paths = parse_list(request.arg("filelist"))
        if paths is None:
            return errno(2)
        with self.world.lock:
            info = [{"path": p, "errno": 0 if account.delete(str(p)) else -9} for p in paths]
        if request.query.get("async") in ("1", "2"):
            task = self.world.new_task(lambda: [{"path": row["path"]} for row in info], transfer=False)
            return json_response({"errno": 0, "info": [], "request_id": request_id(), "taskid": task.task_id})
        return json_response({"errno": 0, "info": info, "request_id": request_id(), "taskid": 0})


def task_answer(task: Task) -> dict[str, Any]:
    """share/taskquery's JSON: check both errno and task_errno (notes §3a)."""
    answer: dict[str, Any] = {"errno": 0, "request_id": request_id(), "task_errno": 0, "status": task.status}
    if task.status == "running":
        answer["progress"] = 50
    elif task.status == "failed":
        answer.update(task_errno=task.task_errno, progress=0)
    else:
        answer.update(progress=100, list=task.result, total=len(task.result))
    return answer
