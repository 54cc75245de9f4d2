"""pan.baidu.com/apaas/1.0/share/…: the OpenAPI share capability (enterprise apps only),
notes §3b. fsid values go out as strings (they are above 2^53)."""

from __future__ import annotations

import json
import time
from typing import Any

from .server import Request, Response, json_response
from .state import Account, Node, Share, entry
from .world import World

PAGE_SIZE_MAX = 100
DEAD = {"missing": 13000, "cancelled": 13001, "expired": 13004, "blocked": 13000}


def apaas_error(code: int, message: str = "") -> Response:
    return json_response({"errno": code, "errmsg": message, "request_id": int(time.time() * 1000)})


def answer(data: dict[str, Any]) -> Response:
    return json_response({"errno": 0, "errmsg": "succ", "request_id": int(time.time() * 1000), "data": data})


class Apaas:
    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response:
        grant, code = self.world.token_grant(request.query.get("access_token", ""))
        if grant is None:
            return apaas_error(code, "Access token invalid or no longer valid")
        if not grant.app.share_capability or request.query.get("appid") != grant.app.app_id:
            return apaas_error(13998, "app has no share capability")  # enterprise developers only
        action = request.path.rsplit("/", 1)[-1]
        if action == "taskquery":
            return self.task_query(request)
        share = self.share(request.query.get("short_url", ""))
        state = "missing" if share is None else share.state
        if share is None or state != "ok":
            return apaas_error(DEAD[state], "share invalid")
        with self.world.lock:
            if action == "verify":
                return self.verify(request, share)
            if share.code is not None and request.arg("spwd") not in share.randsks:
                return apaas_error(13003, "spwd needed")
            if action == "list":
                return self.listing(request, share)
            if action == "transfer":
                return self.transfer(request, share, grant.account)
        return apaas_error(2, f"{action} is not faked")

    def share(self, short_url: str) -> Share | None:
        """Open question in the notes: does short_url keep its leading '1'? World.apaas_short_url
        says: 'any' (both accepted), 'with_1' or 'without_1' (only that form finds the share)."""
        share = self.world.share_by_short(short_url)
        rule = self.world.apaas_short_url
        if share is None or rule == "any" or (short_url == share.surl) == (rule == "with_1"):
            return share
        return None

    def verify(self, request: Request, share: Share) -> Response:
        if share.code is not None and request.arg("pwd") != share.code:
            return apaas_error(13003, "pwd wrong")
        spwd = self.world.ids.randsk()
        share.randsks.add(spwd)
        return answer({"spwd": spwd})

    def listing(self, request: Request, share: Share) -> Response:
        folder_path = request.arg("dir")
        if folder_path:
            folder = share.find_path(folder_path)
            if folder is None or not folder.isdir:
                return apaas_error(2, "dir not found")
            rows = [(f"{folder_path.rstrip('/')}/{c.name}", c) for c in folder.children]
        else:
            rows = [(share.path_of(root), root) for root in share.roots]
        page = max(1, int(request.arg("page") or 1))
        size = min(PAGE_SIZE_MAX, int(request.arg("page_size") or PAGE_SIZE_MAX))
        chosen = rows[(page - 1) * size: page * size]
        listed = []
        for path, node in chosen:
            row = entry(node, path, fsid_as_string=True)
            listed.append({"fsid": row.pop("fs_id"), **row})
        return answer({"count": len(rows), "list": listed})

    def transfer(self, request: Request, share: Share, account: Account) -> Response:
        try:
            wanted = [int(f) for f in json.loads(request.arg("fsid_list") or "[]")]
        except (ValueError, TypeError):
            return apaas_error(2, "fsid_list")
        found = [share.find_id(f) for f in wanted]
        if not wanted or None in found:
            return apaas_error(2, "fsid_list")
        nodes = [node for _, node in (f for f in found if f is not None)]
        if sum(n.file_count() for n in nodes) > account.transfer_limit:
            return apaas_error(13072, "transfer count over the limit")
        if account.used + sum(n.total_size() for n in nodes) > account.quota:
            return apaas_error(-10, "no space")
        to_path = request.arg("to_path")
        if not to_path.startswith("/"):
            return apaas_error(2, "to_path")
        task = self.world.new_task(lambda: self._copy(account, to_path, nodes, request.arg("ondup", "fail")))
        return answer({"task_id": task.task_id})

    def _copy(self, account: Account, to_path: str, nodes: list[Node], ondup: str) -> list[dict[str, Any]]:
        target = account.mkdir(to_path, self.world.ids.fs_id)
        copied = []
        for node in nodes:
            name = node.name
            if target.child(name) is not None:
                if ondup != "newcopy":
                    continue  # ondup=fail: the existing copy stays (treat as done)
                stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
                name = f"{stem}_{node.fs_id % 100000}{dot}{ext}"
            twin = node.copy(self.world.ids.fs_id, name)
            target.children.append(twin)
            copied.append({"from_fs_id": str(node.fs_id), "to_fs_id": str(twin.fs_id),
                           "to": f"{to_path.rstrip('/')}/{name}"})
        return copied

    def task_query(self, request: Request) -> Response:
        task = self.world.tasks.get(int(request.query.get("task_id") or 0))
        if task is None:
            return apaas_error(13070, "task query unavailable")
        self.world.advance(task)
        data: dict[str, Any] = {"status": task.status, "progress": 100 if task.status == "success" else 50}
        if task.status == "success":
            data["desc"] = {"success_count": len(task.result), "list": task.result}
        if task.status == "failed":
            data.update(progress=0, task_errno=task.task_errno, desc={"success_count": 0})
        return answer(data)
