"""The loopback fakes behave as the notes say Baidu, 163 and QQ do (baidu-netdisk.md §2–§4,
§6; mail-163.md §3). Plain `requests`, going to the fakes' ports as a client's host map would."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fakes import (BROWSER_UA, NETDISK_UA, STANDIN_MD5, STANDIN_SIZE, FakeNetdisk, GeneratedContent,
                         fake_netdisk)  # noqa: F401  (the fixture)

PAN = "https://pan.baidu.com"


def call(fake: FakeNetdisk, method: str, real_url: str, **kwargs) -> requests.Response:
    """One request to a real URL through the fakes' host map, redirects not followed."""
    kwargs.setdefault("allow_redirects", False)
    kwargs.setdefault("timeout", 30)
    return requests.request(method, fake.url(real_url), **kwargs)


def page_data(html: str) -> dict:
    match = re.search(r"locals\.mset\((\{.+?\})\);", html) or re.search(r"try\{ (\{.+?\}); \}catch", html)
    assert match, html
    return json.loads(match.group(1))


def verify(fake, share, code, **headers) -> requests.Response:
    headers.setdefault("Referer", f"{PAN}/share/init?surl={share.short}")
    return call(fake, "POST", f"{PAN}/share/verify?surl={share.short}&t=1&channel=chunlei&web=1&bdstoken=null"
                "&clienttype=0", data={"pwd": code, "vcode": "", "vcode_str": ""},
                headers={"User-Agent": NETDISK_UA, **headers})


def test_share_page_redirects_verifies_and_carries_both_data_forms(fake_netdisk):
    fake = fake_netdisk
    share = fake.add_share({"作品/路演视频.mp4": b"v" * 1000, "作品/申报书.docx": b"d" * 10}, code="ab3d")
    assert len(share.surl) == 23 and share.surl.startswith("1")

    browser = call(fake, "GET", share.url, headers={"User-Agent": BROWSER_UA})
    assert browser.status_code == 302
    login = call(fake, "GET", browser.headers["Location"], headers={"User-Agent": BROWSER_UA})
    assert login.status_code == 200 and "loginstate" not in login.text and len(login.content) == 10751

    first = call(fake, "GET", share.url, headers={"User-Agent": NETDISK_UA})
    assert first.status_code == 302
    assert first.headers["Location"] == f"{PAN}/share/init?surl={share.surl[1:]}"

    assert verify(fake, share, "zzzz").json()["errno"] == -9
    assert verify(fake, share, "ab3d", Referer="").json()["errno"] != 0
    good = verify(fake, share, "ab3d")
    randsk = good.json()["randsk"]
    assert good.json()["errno"] == 0 and "%" in randsk
    # domain=.baidu.com: a jar would not send it to 127.0.0.1, so a client sends it explicitly
    assert f"BDCLND={randsk};" in good.headers["Set-Cookie"] and "domain=.baidu.com" in good.headers["Set-Cookie"]

    page = call(fake, "GET", share.url, headers={"User-Agent": NETDISK_UA}, cookies={"BDCLND": randsk})
    data = page_data(page.text)
    assert "locals.mset(" in page.text and data["loginstate"] == 0
    assert data["share_uk"] == str(share.owner_uk) and data["shareid"] == share.shareid
    [folder] = data["file_list"]
    assert folder["server_filename"] == "作品" and folder["isdir"] == 1
    assert folder["path"] == f"/sharelink{share.owner_uk}-{folder['fs_id']}/作品"
    assert folder["fs_id"] > 2**53

    share.page_form, share.file_list_form = "try", "object"
    page = call(fake, "GET", share.url, headers={"User-Agent": NETDISK_UA}, cookies={"BDCLND": randsk})
    assert "try{ {" in page.text and "locals.mset" not in page.text
    assert page_data(page.text)["file_list"]["list"][0]["fs_id"] == folder["fs_id"]

    for kill in (fake.cancel_share, fake.expire_share, fake.block_share):
        kill(share)
        dead = call(fake, "GET", share.url, headers={"User-Agent": NETDISK_UA})
        assert dead.status_code == 200 and "platform-non-found" in dead.text and "share_nofound_des" in dead.text
        assert verify(fake, share, "ab3d").json()["errno"] != 0
    unknown = call(fake, "GET", f"{PAN}/s/1{'x' * 22}", headers={"User-Agent": NETDISK_UA})
    assert "share_nofound_des" in unknown.text
    assert fake.server_errors == []


def test_captcha_and_share_list_paging(fake_netdisk):
    fake = fake_netdisk
    share = fake.add_share({"素材": {f"{i:03}.jpg": b"p" for i in range(250)}}, code="k9m2")
    share.captcha = True
    assert verify(fake, share, "k9m2").json()["errno"] == -62
    captcha = call(fake, "GET", f"{PAN}/api/getcaptcha?prod=shareverify&web=1").json()
    answer = fake.captchas[captcha["vcode_str"]]
    solved = call(fake, "POST", f"{PAN}/share/verify?surl={share.short}", headers={"Referer": share.url},
                  data={"pwd": "k9m2", "vcode": answer, "vcode_str": captcha["vcode_str"]}).json()
    assert solved["errno"] == 0
    cookie = {"BDCLND": solved["randsk"]}

    root_url = f"{PAN}/share/list?shorturl={share.short}&root=1&web=5&app_id=250528&channel=chunlei"
    assert call(fake, "GET", root_url).json()["errno"] == -9  # no BDCLND
    share.list_8001 = 1
    assert call(fake, "GET", root_url, cookies=cookie).json()["errno"] == 8001
    root = call(fake, "GET", root_url, cookies=cookie).json()
    assert root["errno"] == 0 and [e["server_filename"] for e in root["list"]] == ["素材"]

    sizes, page = [], 1
    while True:
        listed = call(fake, "GET", f"{PAN}/share/list", cookies=cookie, params={
            "uk": share.owner_uk, "shareid": share.shareid, "dir": root["list"][0]["path"], "page": page,
            "num": 500, "order": "other", "desc": 1, "showempty": 0, "web": 1}).json()
        assert listed["errno"] == 0
        sizes.append(len(listed["list"]))
        if len(listed["list"]) < 100:
            break
        page += 1
    assert sizes == [100, 100, 50]


def logged_in(account) -> dict:
    return {"BDUSS": account.bduss, "STOKEN": account.stoken}


def test_cookie_route_transfer_locatedownload_and_file_host(fake_netdisk):
    fake = fake_netdisk
    video = GeneratedContent(3 * 1024 * 1024 + 17, seed=7)
    share = fake.add_share({"路演.mp4": video, "资料": {"a.txt": b"a", "b.txt": b"b"}})
    account = fake.add_account(transfer_limit=2)
    cookies = logged_in(account)
    bdstoken = call(fake, "GET", f"{PAN}/api/gettemplatevariable?fields=[\"bdstoken\"]", cookies=cookies).json()
    assert bdstoken["result"]["bdstoken"] == account.bdstoken
    created = call(fake, "POST", f"{PAN}/api/create?a=commit&bdstoken={account.bdstoken}", cookies=cookies,
                   data={"path": "/inbox/m1", "isdir": "1", "block_list": "[]"}).json()
    assert created["errno"] == 0
    again = call(fake, "POST", f"{PAN}/api/create?a=commit&bdstoken={account.bdstoken}", cookies=cookies,
                 data={"path": "/inbox/m1", "isdir": "1", "block_list": "[]"}).json()
    assert again["errno"] == -8

    video_id = share.roots[0].fs_id
    folder_id = share.roots[1].fs_id
    url = (f"{PAN}/share/transfer?shareid={share.shareid}&from={share.owner_uk}&bdstoken={account.bdstoken}"
           "&channel=chunlei&web=1&clienttype=0&async=1")
    form = {"fsidlist": json.dumps([video_id, folder_id]), "path": "/inbox/m1"}
    assert call(fake, "POST", url, cookies=cookies, data=form).json()["errno"] != 0  # no Referer
    over = call(fake, "POST", url, cookies=cookies, data=form, headers={"Referer": share.url}).json()
    assert over["errno"] == 12 and over["target_file_nums"] == 3 and over["target_file_nums_limit"] == 2

    form["fsidlist"] = json.dumps([video_id])
    fake.taskquery_running = 2
    started = call(fake, "POST", url, cookies=cookies, data=form, headers={"Referer": share.url}).json()
    assert started["errno"] == 0 and started["task_id"]
    query = f"{PAN}/share/taskquery?taskid={started['task_id']}"
    statuses = [call(fake, "GET", query, cookies=cookies).json()["status"] for _ in range(3)]
    assert statuses == ["running", "running", "success"]
    exists = call(fake, "POST", url, cookies=cookies, data=form, headers={"Referer": share.url}).json()
    assert exists["errno"] == 12 and exists["info"][0]["errno"] == -30

    fake.next_task_errno = -32
    form["path"] = "/inbox"
    failing = call(fake, "POST", url, cookies=cookies, data=form, headers={"Referer": share.url}).json()
    failed = [call(fake, "GET", f"{PAN}/share/taskquery?taskid={failing['task_id']}").json() for _ in range(3)][-1]
    assert failed["errno"] == 0 and failed["status"] == "failed" and failed["task_errno"] == -32

    located = call(fake, "GET", "https://pcs.baidu.com/rest/2.0/pcs/file?method=locatedownload"
                   "&app_id=250528&ver=4.0&path=/inbox/m1/路演.mp4", cookies={"BDUSS": account.bduss}).json()
    good = [u["url"] for u in located["urls"] if u["encrypt"] == 0 and "nb.cache" not in u["url"]]
    assert len(located["urls"]) == 3 and good[0].startswith("https://d.pcs.baidu.com/file/")

    assert call(fake, "GET", good[0], cookies={"BDUSS": account.bduss},
                headers={"User-Agent": BROWSER_UA}).json()["error_code"] == 31326
    part = call(fake, "GET", good[0], cookies={"BDUSS": account.bduss},
                headers={"User-Agent": NETDISK_UA, "Range": "bytes=1000-2999999"})
    assert part.status_code == 206 and len(part.content) == 2999000
    assert part.headers["Content-Range"] == f"bytes 1000-2999999/{video.size}"
    assert part.headers["x-bs-file-size"] == str(video.size) and part.headers["Accept-Ranges"] == "bytes"
    assert part.content == video.read(1000, 3000000)
    whole = video.read()
    assert part.headers["Content-MD5"] == hashlib.md5(whole).hexdigest() == part.headers["ETag"]
    listed = account.files()["/inbox/m1/路演.mp4"]
    assert listed.content.listing_md5 != hashlib.md5(whole).hexdigest()

    deleted = call(fake, "POST", f"{PAN}/api/filemanager?opera=delete&async=2&bdstoken={account.bdstoken}",
                   cookies=cookies, data={"filelist": json.dumps(["/inbox/m1"])}).json()
    done = call(fake, "GET", f"{PAN}/share/taskquery?taskid={deleted['taskid']}").json()
    assert done["status"] == "success" and "/inbox/m1" not in account.files()
    assert fake.server_errors == []


def located_url(fake, account, path) -> str:
    located = call(fake, "GET", f"https://pcs.baidu.com/rest/2.0/pcs/file?method=locatedownload&path={path}",
                   cookies={"BDUSS": account.bduss}).json()
    return [u["url"] for u in located["urls"] if u["encrypt"] == 0 and "nb.cache" not in u["url"]][0]


def test_file_host_cuts_expires_blocks_and_fails_on_demand(fake_netdisk):
    fake = fake_netdisk
    account = fake.add_account(files={"in/v.mp4": 400_000, "in/bad.mp4": 5000})
    headers, cookies = {"User-Agent": NETDISK_UA}, {"BDUSS": account.bduss}
    url = located_url(fake, account, "/in/v.mp4")

    fake.cut(1000)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        call(fake, "GET", url, headers=headers, cookies=cookies).content
    assert call(fake, "GET", url, headers=headers, cookies=cookies).status_code == 200

    fake.expire_links(after_bytes=150_000)
    fresh = located_url(fake, account, "/in/v.mp4")
    first = call(fake, "GET", fresh, headers={**headers, "Range": "bytes=0-99999"}, cookies=cookies)
    assert first.status_code == 206 and len(first.content) == 100_000
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        call(fake, "GET", fresh, headers={**headers, "Range": "bytes=100000-"}, cookies=cookies).content
    gone = call(fake, "GET", fresh, headers={**headers, "Range": "bytes=150000-"}, cookies=cookies)
    assert gone.status_code == 403 and gone.json()["error_code"] == 31360
    renewed = call(fake, "GET", located_url(fake, account, "/in/v.mp4"),
                   headers={**headers, "Range": "bytes=150000-159999"}, cookies=cookies)
    assert renewed.status_code == 206
    fake.expire_links()

    fake.expire_links(after_requests=1, answer="403")
    once = located_url(fake, account, "/in/v.mp4")
    assert call(fake, "GET", once, headers={**headers, "Range": "bytes=0-9"}, cookies=cookies).status_code == 206
    bare = call(fake, "GET", once, headers={**headers, "Range": "bytes=10-19"}, cookies=cookies)
    assert bare.status_code == 403 and b"error_code" not in bare.content
    fake.expire_links()

    fake.serve_standin(account, "/in/bad.mp4")
    blocked = located_url(fake, account, "/in/bad.mp4")
    assert urlsplit(blocked).hostname == "issuecdn.baidupcs.com"
    standin = call(fake, "GET", blocked, headers=headers)
    assert len(standin.content) == STANDIN_SIZE and standin.headers["Content-MD5"] == STANDIN_MD5

    fake.fail_http("pcs.baidu.com", 429, retry_after=60)
    fake.fail_http("pcs.baidu.com", 502)
    refused = call(fake, "GET", "https://pcs.baidu.com/rest/2.0/pcs/file?method=locatedownload&path=/in/v.mp4",
                   cookies=cookies)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert call(fake, "GET", "https://pcs.baidu.com/rest/2.0/pcs/file?method=locatedownload&path=/in/v.mp4",
                cookies=cookies).status_code == 502
    fake.hitcode()
    throttled = call(fake, "GET", url, headers=headers, cookies=cookies)
    assert throttled.status_code == 403 and "hitcode" in throttled.json()["error_msg"]
    fake.slow("pan.baidu.com", 0.3, path="/share/list")
    started = time.monotonic()
    call(fake, "GET", f"{PAN}/share/list?shorturl=x&root=1")
    assert time.monotonic() - started >= 0.3  # a lower bound holds on any machine
    fake.rate_limit(path="/share/list")
    assert call(fake, "GET", f"{PAN}/share/list?shorturl=x&root=1").json()["errno"] == 31034
    assert fake.server_errors == []


def test_openapi_device_login_refresh_xpan_and_dlink(fake_netdisk):
    fake = fake_netdisk
    app = fake.add_app()
    account = fake.add_account(files={f"apps/intake/in/{i:04}.jpg": b"x" * i for i in range(1, 1201)})
    oauth = "https://openapi.baidu.com/oauth/2.0"
    device = call(fake, "GET", f"{oauth}/device/code?response_type=device_code&client_id={app.app_key}"
                  "&scope=basic,netdisk").json()
    token_form = {"grant_type": "device_token", "code": device["device_code"], "client_id": app.app_key,
                  "client_secret": app.secret_key}
    pending = call(fake, "POST", f"{oauth}/token", data=token_form)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    fake.approve_device(device["user_code"], account)
    first = call(fake, "POST", f"{oauth}/token", data=token_form).json()
    assert first["expires_in"] == 2592000 and first["refresh_token"]

    refresh_form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                    "client_id": app.app_key, "client_secret": app.secret_key}
    second = call(fake, "POST", f"{oauth}/token", data=refresh_form).json()
    assert second["access_token"] != first["access_token"]
    reused = call(fake, "POST", f"{oauth}/token", data=refresh_form)
    assert reused.json()["error"] == "invalid_grant"
    xpan = f"{PAN}/rest/2.0/xpan"
    assert call(fake, "GET", f"{xpan}/nas?method=uinfo&access_token={first['access_token']}").json()["errno"] == 111
    token = second["access_token"]
    uinfo = call(fake, "GET", f"{xpan}/nas?method=uinfo&access_token={token}",
                 headers={"User-Agent": "pan.baidu.com"}).json()
    assert uinfo["errno"] == 0 and uinfo["uk"] == account.uk

    rows, start = [], 0
    while True:
        page = call(fake, "GET", f"{xpan}/multimedia", params={"method": "listall", "path": "/apps/intake",
                    "recursion": 1, "start": start, "limit": 1000, "access_token": token}).json()
        rows += page["list"]
        if not page["has_more"]:
            break
        start = page["cursor"]
    assert len([r for r in rows if not r["isdir"]]) == 1200

    target = next(r for r in rows if r["path"].endswith("/0100.jpg"))
    metas = call(fake, "GET", f"{xpan}/multimedia", params={"method": "filemetas", "fsids": f"[{target['fs_id']}]",
                 "dlink": 1, "access_token": token}).json()
    dlink = metas["list"][0]["dlink"]
    assert dlink.startswith("https://d.pcs.baidu.com/file/")
    assert call(fake, "GET", f"{dlink}&access_token={token}").status_code == 403  # User-Agent is not pan.baidu.com
    hop = call(fake, "GET", f"{dlink}&access_token={token}", headers={"User-Agent": "pan.baidu.com"})
    assert hop.status_code == 302 and hop.headers["Location"].startswith("https://d.pcs.baidu.com/data/")
    body = call(fake, "GET", hop.headers["Location"], headers={"User-Agent": "pan.baidu.com", "Range": "bytes=-10"})
    assert body.status_code == 206 and body.content == b"x" * 10
    assert fake.server_errors == []


def test_authorization_code_grant_works_once(fake_netdisk):
    fake = fake_netdisk
    app, account = fake.add_app(), fake.add_account()
    code = fake.authorization_code(app, account)
    form = {"grant_type": "authorization_code", "code": code, "client_id": app.app_key,
            "client_secret": app.secret_key, "redirect_uri": "oob"}
    assert "access_token" in call(fake, "POST", "https://openapi.baidu.com/oauth/2.0/token", data=form).json()
    assert call(fake, "POST", "https://openapi.baidu.com/oauth/2.0/token", data=form).json()["error"] == "invalid_grant"
    form["client_secret"] = "wrong"
    assert call(fake, "POST", "https://openapi.baidu.com/oauth/2.0/token", data=form).json()["error"] == "invalid_client"


def test_apaas_share_api_with_string_fsids(fake_netdisk):
    fake = fake_netdisk
    app, poor = fake.add_app(), fake.add_app("poor", share_capability=False)
    account = fake.add_account()
    share = fake.add_share({"作品.zip": b"z" * 100}, code="q1w2")
    token = fake.issue_tokens(app, account)[0]
    base = f"{PAN}/apaas/1.0/share"
    params = {"product": "netdisk", "appid": app.app_id, "access_token": token, "short_url": share.surl}
    assert call(fake, "POST", f"{base}/verify", params=params, data={"pwd": "0000"}).json()["errno"] == 13003
    spwd = call(fake, "POST", f"{base}/verify", params=params, data={"pwd": "q1w2"}).json()["data"]["spwd"]
    listed = call(fake, "POST", f"{base}/list", params={**params, "short_url": share.short},
                  data={"spwd": spwd, "dir": "", "page": 1, "page_size": 100}).json()["data"]
    fsid = listed["list"][0]["fsid"]
    assert isinstance(fsid, str) and int(fsid) > 2**53
    fake.apaas_short_url = "without_1"
    assert call(fake, "POST", f"{base}/list", params=params, data={"spwd": spwd}).json()["errno"] == 13000
    fake.apaas_short_url = "any"

    fake.fail_errno(13071, path="/apaas/1.0/share/transfer")
    form = {"spwd": spwd, "fsid_list": json.dumps([fsid]), "to_path": "/apps/intake/m1", "async": 2, "ondup": "fail"}
    assert call(fake, "POST", f"{base}/transfer", params=params, data=form).json()["errno"] == 13071
    task_id = call(fake, "POST", f"{base}/transfer", params=params, data=form).json()["data"]["task_id"]
    poll = {"appid": app.app_id, "access_token": token, "task_id": task_id}
    states = [call(fake, "GET", f"{base}/taskquery", params=poll).json()["data"]["status"] for _ in range(2)]
    assert states == ["running", "success"]
    assert "/apps/intake/m1/作品.zip" in account.files()

    poor_token = fake.issue_tokens(poor, account)[0]
    refused = call(fake, "POST", f"{base}/verify", data={"pwd": "q1w2"},
                   params={**params, "appid": poor.app_id, "access_token": poor_token}).json()
    assert refused["errno"] == 13998


def test_generated_content_is_addressable_by_offset():
    content = GeneratedContent(300_000, seed=3)
    whole = content.read()
    assert len(whole) == 300_000 and content.md5 == hashlib.md5(whole).hexdigest()
    assert content.read(65_530, 131_080) == whole[65_530:131_080]
    assert content.block(1) != content.block(2)  # a chunk put at the wrong offset changes the md5


def test_163_and_qq_large_attachments(fake_netdisk):
    fake = fake_netdisk
    video = fake.add_attachment("netease", "路演视频.mp4", b"m" * 5000)
    expired = fake.add_attachment("netease", "old.mp4", b"o", state="expired")
    deleted = fake.add_attachment("dashi", "gone.mp4", b"g", state="deleted")
    qq = fake.add_attachment("qq", "视频.mp4", b"q" * 300)
    qq_old = fake.add_attachment("qq_old", "旧.mp4", b"r" * 30)

    key = parse_qs(urlsplit(fake.attachment_url(video)).query)["file"][0]
    resolved = call(fake, "GET", f"https://fs.mail.163.com/fs/service?f={key}&op=fs_dl_f_a").json()
    assert resolved["code"] == 200
    download = call(fake, "GET", resolved["result"]["downloadUrl"])
    assert download.content == b"m" * 5000
    name = download.headers["Content-Disposition"].encode("latin-1").decode("utf-8")
    assert '"路演视频.mp4"' in name
    assert call(fake, "GET", f"https://fs.mail.163.com/fs/service?f={expired.key}&op=fs_dl_f_a").json()["code"] == -17
    dashi = call(fake, "POST", "https://dashi.163.com/filehub-master/file/dl/prepare2",
                 json={"fid": "", "linkKey": deleted.key}).json()
    assert dashi["code"] in (404, 601)
    newer = call(fake, "POST", "https://mail.163.com/filehub/bg/dl/prepare", json={"linkKey": expired.key}).json()
    assert newer["code"] == 400
    assert "超大附件" in fake.attachment_html(video) and "到期" in fake.attachment_html(video)

    page = call(fake, "GET", fake.attachment_url(qq)).text
    assert "var status = 1" in page
    url = re.search(r'var url = "(.+?)"', page).group(1)
    assert "\\x26" in url and "&" not in url
    assert call(fake, "GET", url.replace("\\x26", "&")).content == b"q" * 300
    qq.state = "expired"
    assert "var url" not in call(fake, "GET", fake.attachment_url(qq)).text

    old = call(fake, "GET", fake.attachment_url(qq_old)).text
    href = re.search(r'class="ft_d_btnDownload btn_blue" href="([^"]+)"', old).group(1).replace("&amp;", "&")
    assert call(fake, "GET", href).content == b"r" * 30


def test_closing_frees_every_port():
    with FakeNetdisk() as fake:
        url = fake.base_url("pan.baidu.com")
        assert requests.get(url + "/s/1nothing", headers={"User-Agent": NETDISK_UA}, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + "/s/1nothing", timeout=10)


def test_fixture_closes_the_servers_when_the_test_fails(tmp_path):
    """Run a failing test that uses the fixture in its own pytest; its ports must be closed after."""
    ports = tmp_path / "ports.txt"
    (tmp_path / "test_failing.py").write_text(
        "from tests.fakes import fake_netdisk  # noqa: F401\n"
        "def test_fails(fake_netdisk):\n"
        f"    open({str(ports)!r}, 'w').write(fake_netdisk.host_map)\n"
        "    assert False\n", "utf-8")
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert run.returncode == 1, run.stdout + run.stderr
    urls = [pair.split("=", 1)[1] for pair in ports.read_text().split(",")]
    assert len(urls) == 11
    for url in urls:
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url, timeout=10)
