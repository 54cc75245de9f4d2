"""intake.fetchers.http and the fetchers' settings: INTAKE_HOST_MAP on every request and
redirect, cookies as explicit headers, timeouts, User-Agents; over real HTTP on loopback."""

from __future__ import annotations

import pytest

from intake.fetchers.base import NetworkError
from intake.fetchers.http import NETDISK_UA, HostMap, Http
from intake.kernel.errors import ConfigError
from intake.settings import load_settings
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)


def test_host_map_setting_is_parsed_and_a_bad_pair_names_it(tmp_path):
    settings = load_settings(environ={"INTAKE_HOST_MAP": "pan.baidu.com=http://127.0.0.1:8001/, "
                                                         "PCS.baidu.com=https://proxy.example:443"})
    assert settings.host_map == {"pan.baidu.com": "http://127.0.0.1:8001", "pcs.baidu.com": "https://proxy.example:443"}
    for bad in ("pan.baidu.com", "pan.baidu.com=127.0.0.1:8001", "pan.baidu.com=ftp://x", "=http://x",
                "pan.baidu.com=http://x/path"):
        with pytest.raises(ConfigError, match="INTAKE_HOST_MAP"):
            load_settings(environ={"INTAKE_HOST_MAP": bad})


def test_route_settings_and_secret_files(tmp_path):
    settings = load_settings(environ={})
    assert (settings.netdisk_route, settings.download_max_gb, settings.disk_reserve_gb) == ("probe", 20.0, 5.0)
    with pytest.raises(ConfigError, match="INTAKE_NETDISK_ROUTE"):
        load_settings(environ={"INTAKE_NETDISK_ROUTE": "ftp"})
    with pytest.raises(ConfigError, match="INTAKE_BAIDU_TASK_STATUS"):
        load_settings(environ={"INTAKE_BAIDU_TASK_STATUS": "2=done"})
    cookie, secret = tmp_path / "cookie", tmp_path / "secret"
    cookie.write_text("BDUSS=abc; STOKEN=def\n")
    secret.write_text("s3cret\n")
    settings = load_settings(environ={"INTAKE_BAIDU_COOKIE_FILE": str(cookie), "INTAKE_NETDISK_ROUTE": "Cookie"})
    assert settings.baidu_cookie == "BDUSS=abc; STOKEN=def" and settings.netdisk_route == "cookie"
    config = tmp_path / "intake.toml"
    config.write_text(f'baidu_secret_key_file = "{secret}"\nhost_map = "pan.baidu.com=http://127.0.0.1:9"\n')
    settings = load_settings(str(config), {})
    assert settings.baidu_secret_key == "s3cret" and settings.host_map == {"pan.baidu.com": "http://127.0.0.1:9"}
    assert "abc" not in repr(load_settings(environ={"INTAKE_BAIDU_COOKIE": "BDUSS=abc; STOKEN=def"}))
    assert "s3cret" not in repr(settings)


def test_a_redirect_is_mapped_and_cookies_travel_as_a_header(fake_netdisk):
    share = fake_netdisk.add_share({"a.mp4": b"x" * 10}, "ab12")
    http = Http(HostMap(dict(pair.split("=", 1) for pair in fake_netdisk.host_map.split(","))))
    response = http.request("GET", share.url, headers={"User-Agent": NETDISK_UA}, cookies={"BDUSS": "u1"})
    # the page said 302 to https://pan.baidu.com/share/init?…: followed to the fake, not to Baidu
    assert response.status_code == 200 and response.url == f"https://pan.baidu.com/share/init?surl={share.short}"
    hops = fake_netdisk.requests_to("pan.baidu.com")
    assert [h.path for h in hops] == [f"/s/{share.surl}", "/share/init"]
    assert all(h.headers.get("Cookie") == "BDUSS=u1" for h in hops)  # a jar keyed by .baidu.com would not
    assert all(h.headers.get("User-Agent") == NETDISK_UA for h in hops)


def test_cookies_stay_within_the_site_and_no_jar_keeps_any(fake_netdisk):
    http = Http(HostMap(dict(pair.split("=", 1) for pair in fake_netdisk.host_map.split(","))))
    share = fake_netdisk.add_share({"a.mp4": b"x"})
    # a browser User-Agent is sent to the login page on the same site: cookies go along
    http.request("GET", share.url, cookies={"BDUSS": "u1"})
    assert [h.headers.get("Cookie") for h in fake_netdisk.requests_to("pan.baidu.com")] == ["BDUSS=u1"] * 2
    assert len(http.session.cookies) == 0
    # verify sets BDCLND for .baidu.com: it is read from the answer, never kept by requests
    coded = fake_netdisk.add_share({"a.mp4": b"x"}, "ab12")
    answer = http.request("POST", f"https://pan.baidu.com/share/verify?surl={coded.short}", data={"pwd": "ab12"},
                          headers={"Referer": coded.url})
    assert answer.json()["errno"] == 0 and len(http.session.cookies) == 0
    assert HostMap({"pan.baidu.com": "http://127.0.0.1:1"}).to_wire("https://other.example/x?y=1") == \
        "https://other.example/x?y=1"


def test_every_request_has_a_timeout(fake_netdisk):
    fake_netdisk.slow("pan.baidu.com", 1.5)
    http = Http(HostMap(dict(pair.split("=", 1) for pair in fake_netdisk.host_map.split(","))), timeout=(5.0, 0.3))
    with pytest.raises(NetworkError) as caught:
        http.request("GET", "https://pan.baidu.com/s/1nothing")
    assert caught.value.retry_after and caught.value.retry_after > 0


def test_an_unreachable_host_is_a_network_error():
    http = Http(HostMap({"pan.baidu.com": "http://127.0.0.1:9"}))  # the discard port: nothing listens
    with pytest.raises(NetworkError, match="pan.baidu.com"):
        http.request("GET", "https://pan.baidu.com/s/1abc")
