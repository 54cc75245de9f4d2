"""Every row of the notes' §4 error table, against the loopback Baidu: each code injected
where Baidu would answer it (or produced by the fake itself), and what the daemon then
does: a finding for the sender, our own TransientError with the table's retry-after, a
configuration error, or going on (already there, split, re-sign, re-locate, resume)."""

from __future__ import annotations

import pytest

from intake.fetchers.baidu_share import ERRORS, MISSING, kind_of
from intake.fetchers.base import NetworkError
from intake.fetchers.http import HostMap, Http
from intake.kernel.errors import ConfigError, TransientError
from intake.parsers.links import Link
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetch_support import NO_RESERVE, OpenApiSetup, codes, fetcher, link

FILES = {"作品/视频.mp4": 300_000, "表.xlsx": b"xlsx"}
HOURS, MINUTES = 3600, 60
PAN, PCS, FILE_HOST = "pan.baidu.com", "pcs.baidu.com", "d.pcs.baidu.com"
TRANSFER, VERIFY, LOCATE = "/share/transfer", "/share/verify", "/rest/2.0/pcs/file"
APAAS = "/apaas/1.0/share/"


def run(fake, tmp_path, route, *, host=None, path="", payload=None, status=None, times=1, share=None, dest="m"):
    """One fetch through ``route`` with one fault injected; returns Fetched or the error."""
    share = share or fake.add_share(FILES, "ab12")
    if route == "openapi":
        setup = OpenApiSetup(fake, tmp_path)
        setup.login()
        fetch = setup.route()
    else:
        account = fake.accounts[0] if fake.accounts else fake.add_account()
        fetch = fetcher(fake, tmp_path, route, INTAKE_BAIDU_COOKIE=account.cookie)
    if host is not None:
        fake.fault(host, path, times=times, payload=payload, status=status)
    try:
        return fetch.fetch(link(share, "ab12"), tmp_path / dest, NO_RESERVE, key="R")
    except Exception as err:  # the outcome under test
        return err


def outcome(result):
    if isinstance(result, ConfigError):
        return "config"
    if isinstance(result, TransientError):
        return "transient"
    if isinstance(result, Exception):
        raise result
    return codes(result)[0] if result.findings else "fetched"


# (route, host, path, payload, expected, least retry-after, most retry-after)
SENDER = [
    ("cookie", PAN, VERIFY, {"errno": -9}, "link.code_wrong"),
    ("cookie", PAN, VERIFY, {"errno": -12}, "link.code_wrong"),
    ("openapi", PAN, APAAS + "verify", {"errno": 13003}, "link.code_wrong"),
    ("cookie", PAN, VERIFY, {"errno": 105}, "link.unavailable"),
    ("cookie", PAN, VERIFY, {"errno": -7}, "link.unavailable"),
    ("cookie", PAN, VERIFY, {"errno": -21}, "link.unavailable"),
    ("cookie", PAN, VERIFY, {"errno": 115}, "link.unavailable"),
    ("cookie", PAN, "/share/list", {"errno": 105}, "link.unavailable"),
    ("openapi", PAN, APAAS + "verify", {"errno": 13000}, "link.unavailable"),
    ("openapi", PAN, APAAS + "list", {"errno": 13001}, "link.unavailable"),
    ("openapi", PAN, APAAS + "verify", {"errno": 13004}, "link.unavailable"),
    ("cookie", PAN, VERIFY, {"errno": -8}, "link.unavailable"),  # -8 after verify: expired
    ("cookie", PCS, LOCATE, {"error_code": 31390}, "link.unavailable"),  # illegal file
]


@pytest.mark.parametrize("route,host,path,payload,expected", SENDER,
                         ids=[f"{r}-{p.rsplit('/', 1)[-1]}-{list(x.values())[0]}" for r, _, p, x, _ in SENDER])
def test_the_senders_problems_are_findings(fake_netdisk, tmp_path, route, host, path, payload, expected):
    times = 2 if host == PCS else 1  # a missing or blocked file is looked for twice
    assert outcome(run(fake_netdisk, tmp_path, route, host=host, path=path, payload=payload, times=times)) == expected


OURS = [
    ("cookie", PAN, VERIFY, {"errno": -62}, 6 * HOURS, None),  # captcha
    ("cookie", PAN, VERIFY, {"errno": -19}, 6 * HOURS, None),
    ("cookie", PAN, VERIFY, {"errno": -20}, 6 * HOURS, None),
    ("cookie", PAN, "/share/list", {"errno": 132}, 6 * HOURS, None),
    ("cookie", PAN, TRANSFER, {"errno": 9019}, 6 * HOURS, None),
    ("cookie", PAN, "/api/user/getinfo", {"errno": 2}, 6 * HOURS, "INTAKE_BAIDU_COOKIE"),  # session dead
    ("cookie", PAN, "/api/gettemplatevariable", {"errno": -6}, 6 * HOURS, "INTAKE_BAIDU_COOKIE"),
    ("cookie", PAN, "/api/gettemplatevariable", {"errno": -4}, 6 * HOURS, "INTAKE_BAIDU_COOKIE"),
    ("cookie", PCS, LOCATE, {"error_code": 31045}, 6 * HOURS, "INTAKE_BAIDU_COOKIE"),
    ("cookie", PAN, TRANSFER, {"errno": -32}, 6 * HOURS, "space"),  # quota
    ("cookie", PAN, TRANSFER, {"errno": -10}, 6 * HOURS, "space"),
    ("cookie", PAN, TRANSFER, {"errno": 20}, 6 * HOURS, "space"),
    ("openapi", PAN, APAAS + "transfer", {"errno": 31112}, 6 * HOURS, "space"),
    ("cookie", PAN, "/share/list", {"errno": 31034}, 10 * MINUTES, "rate"),  # rate limits
    ("openapi", PAN, "/rest/2.0/xpan/multimedia", {"errno": 42000}, 10 * MINUTES, "rate"),
    ("openapi", PAN, APAAS + "list", {"error": "Trigger security policy"}, 10 * MINUTES, "rate"),
    ("cookie", PAN, "/api/create", {"errno": 1504}, 10 * MINUTES, "rate"),
    ("openapi", PAN, APAAS + "taskquery", {"errno": 13070}, 10 * MINUTES, "rate"),
    ("openapi", PAN, APAAS + "transfer", {"errno": 13071}, 10 * MINUTES, "rate"),
    ("cookie", PAN, "/share/list", {"errno": 2}, 10 * MINUTES, "rate"),
    ("cookie", PAN, "/share/taskquery", {"errno": 4}, 10 * MINUTES, "rate"),
    ("cookie", FILE_HOST, "", {"error_code": 31326}, 30 * MINUTES, "throttled"),
    ("openapi", FILE_HOST, "", {"error_code": 31626}, 30 * MINUTES, "throttled"),
    ("cookie", PAN, "/share/taskquery", {"errno": 0, "status": "failed", "task_errno": 1504}, 10 * MINUTES, "rate"),
]


@pytest.mark.parametrize("route,host,path,payload,least,said", OURS,
                         ids=[f"{r}-{p.rsplit('/', 1)[-1] or h}-{list(x.values())[-1]}" for r, h, p, x, _, _ in OURS])
def test_our_problems_wait_as_long_as_the_table_says(fake_netdisk, tmp_path, route, host, path, payload, least, said):
    result = run(fake_netdisk, tmp_path, route, host=host, path=path, payload=payload, times=-1)
    assert outcome(result) == "transient", result
    assert least <= result.retry_after <= max(least, 6 * HOURS)
    if said:
        assert said in str(result)


@pytest.mark.parametrize("route,host,path,status", [("cookie", PAN, "/share/list", 429), ("cookie", PAN, "", 503),
                                                    ("openapi", PAN, APAAS + "list", 500),
                                                    ("openapi", "openapi.baidu.com", "", 502)])
def test_http_overload_is_transient(fake_netdisk, tmp_path, route, host, path, status):
    share = fake_netdisk.add_share(FILES, "ab12")
    if host == "openapi.baidu.com":  # the token endpoint answers only when a refresh is due
        setup = OpenApiSetup(fake_netdisk, tmp_path)
        tokens, _ = setup.login()
        fake_netdisk.expire_access_token(tokens.access_token)
        fake_netdisk.fail_http(host, status, path=path, times=-1)
        with pytest.raises(TransientError) as caught:
            setup.route().fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)
        result = caught.value
    else:
        result = run(fake_netdisk, tmp_path, route, host=host, path=path, status=status, times=-1, share=share)
    assert isinstance(result, TransientError) and 60 <= result.retry_after <= 10 * MINUTES


def test_the_network_is_transient(tmp_path):
    http = Http(HostMap({"pan.baidu.com": "http://127.0.0.1:9"}))
    with pytest.raises(NetworkError) as caught:
        http.json("GET", "https://pan.baidu.com/share/list")
    assert caught.value.retry_after > 0


@pytest.mark.parametrize("route,host,path,payload", [
    ("cookie", PCS, LOCATE, {"error_code": 31362}),  # sign error: User-Agent or cookie
    ("cookie", FILE_HOST, "", {"error_code": 31362}),
])
def test_configuration_errors_name_the_setting(fake_netdisk, tmp_path, route, host, path, payload):
    result = run(fake_netdisk, tmp_path, route, host=host, path=path, payload=payload, times=-1)
    assert outcome(result) == "config" and "INTAKE_BAIDU" in str(result)


def test_an_app_without_the_share_capability_is_configuration(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    setup = OpenApiSetup(fake_netdisk, tmp_path)
    setup.login()
    setup.app.share_capability = False  # errno 13998
    with pytest.raises(ConfigError, match="INTAKE_BAIDU_APP"):
        setup.route().fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)


def test_invalid_scope_on_refresh_is_configuration(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    setup = OpenApiSetup(fake_netdisk, tmp_path)
    tokens, _ = setup.login()
    fake_netdisk.expire_access_token(tokens.access_token)
    fake_netdisk.fault("openapi.baidu.com", "/oauth/2.0/token", payload={"error": "invalid_scope"})
    with pytest.raises(ConfigError, match="INTAKE_BAIDU_APP_KEY"):
        setup.route().fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE)


@pytest.mark.parametrize("errno", [111, -6, 110])
def test_a_dead_token_is_refreshed_once(fake_netdisk, tmp_path, errno):
    assert outcome(run(fake_netdisk, tmp_path, "openapi", host=PAN, path=APAAS + "verify",
                       payload={"errno": errno})) == "fetched"
    result = run(fake_netdisk, tmp_path / "again", "openapi", host=PAN, path=APAAS + "list",
                 payload={"errno": errno}, times=2)
    assert outcome(result) == "transient" and "intake netdisk login" in str(result)


@pytest.mark.parametrize("route,path,payload", [
    ("cookie", TRANSFER, {"errno": 120}), ("cookie", TRANSFER, {"errno": 130}), ("cookie", TRANSFER, {"errno": -33}),
    ("openapi", APAAS + "transfer", {"errno": 13073}),
])
def test_too_many_files_splits_the_transfer(fake_netdisk, tmp_path, route, path, payload):
    result = run(fake_netdisk, tmp_path, route, host=PAN, path=path, payload=payload)
    assert outcome(result) == "fetched" and len(result.files) == 2
    assert len(fake_netdisk.requests_to(PAN, path)) >= 3  # refused whole, then one per part


@pytest.mark.parametrize("route,path,payload", [("cookie", TRANSFER, {"errno": 4}),
                                                ("cookie", TRANSFER, {"errno": 12, "info": [{"errno": -30}]}),
                                                ("openapi", APAAS + "transfer", None)])
def test_already_there_counts_as_done(fake_netdisk, tmp_path, route, path, payload):
    share = fake_netdisk.add_share(FILES, "ab12")
    first = run(fake_netdisk, tmp_path, route, host=FILE_HOST, status=503, times=-1, share=share)
    assert outcome(first) == "transient"  # the transfer went through, the download did not
    fake_netdisk.clear_faults()
    second = run(fake_netdisk, tmp_path, route, host=PAN if payload else None, path=path, payload=payload,
                 share=share) if route == "cookie" else _again_openapi(fake_netdisk, tmp_path, share)
    assert outcome(second) == "fetched" and len(second.files) == 2


def _again_openapi(fake, tmp_path, share):
    setup = OpenApiSetup.__new__(OpenApiSetup)  # the same app and account as the first attempt
    setup.fake, setup.tmp_path = fake, tmp_path
    app = list(fake.apps.values())[0]
    setup.environ = {"INTAKE_BAIDU_APP_KEY": app.app_key, "INTAKE_BAIDU_SECRET_KEY": app.secret_key,
                     "INTAKE_BAIDU_APP_ID": app.app_id}
    return setup.route().fetch(link(share, "ab12"), tmp_path / "m", NO_RESERVE, key="R")


@pytest.mark.parametrize("payload", [{"error_code": 112}, {"error_code": 113}, {"error_code": 31066},
                                     {"error_code": 31297}])
def test_a_stale_sign_or_a_missing_file_is_asked_again(fake_netdisk, tmp_path, payload):
    result = run(fake_netdisk, tmp_path, "cookie", host=PCS, path=LOCATE, payload=payload)
    assert outcome(result) == "fetched"
    assert len(fake_netdisk.requests_to(PCS, LOCATE)) == 3  # two files, one asked twice


def test_our_copy_gone_from_the_account_after_looking_twice_is_ours_not_the_senders(fake_netdisk, tmp_path):
    """31066 from locatedownload names our transferred copy, not the share: retried later."""
    result = run(fake_netdisk, tmp_path, "cookie", host=PCS, path=LOCATE, payload={"error_code": 31066}, times=2)
    assert outcome(result) == "transient"


@pytest.mark.parametrize("route", ["cookie", "openapi"])
def test_an_expired_link_mid_download_resumes(fake_netdisk, tmp_path, route):
    fake_netdisk.expire_links(after_bytes=100_000)
    result = run(fake_netdisk, tmp_path, route)
    assert outcome(result) == "fetched" and (tmp_path / "m" / "作品" / "视频.mp4").stat().st_size == 300_000
    assert fake_netdisk.bytes_served == 300_000 + 4  # nothing fetched twice


def test_the_stand_in_and_a_page_that_says_not_found(fake_netdisk, tmp_path):
    share = fake_netdisk.add_share(FILES, "ab12")
    fake_netdisk.serve_standin(share, next(p for p, _ in share.walk() if p.endswith("视频.mp4")))
    assert outcome(run(fake_netdisk, tmp_path, "openapi", share=share)) == "link.unavailable"
    gone = fake_netdisk.add_share(FILES, "ab12")
    gone.state = "cancelled"
    assert outcome(run(fake_netdisk, tmp_path, "cookie", share=gone, dest="n")) == "link.unavailable"


def test_the_table_is_keyed_by_endpoint():
    assert kind_of("verify", -8) == "expired" and kind_of("create", -8) == kind_of("xpan_create", -8) == "exists"
    assert kind_of("transfer", 4) == "exists" and kind_of("share_list", 4) == "rate"
    assert kind_of("xpan_list", -9) == MISSING and kind_of("verify", -9) == "code_wrong"
    assert kind_of("share_list", -9) is None  # means nothing outside its endpoints: "unknown", retried
    assert all(isinstance(code, (int, str)) for table in ERRORS.values() for code in table)
    assert Link  # the parser's record is what every fetcher takes
