"""The core judging a message with what its links brought (intake.kernel.fetched): the
fetched files side by side with the attachments, the sender's link problems as
findings, our side's as needs_review, and quoted links already received."""

from __future__ import annotations

from intake.core import check_message
from intake.fetchers.base import PARTS_DIR
from intake.kernel.fetched import FAILED, FETCHED, QUOTED, SENDER, FetchedPackage, LinkFetch
from intake.kernel.findings import Finding
from intake.kernel.policy import load_policy
from intake.parsers.message_links import message_links
from intake.parsers.package_folder import UNFINISHED, gather
from intake.samples import make_form, make_project, make_scan
from tests.fetching_support import COURSE, mail

URL = "https://pan.baidu.com/s/1AbCdEfGh"
POLICY = load_policy("roadshow")


def codes(report):
    return [f.code for f in report.findings]


def test_fetched_files_are_judged_with_the_attachments(tmp_path):
    root = tmp_path / "fetched"
    make_project(root / "0" / f"01-{COURSE}", COURSE)  # the share holds the project
    (root / "0" / PARTS_DIR).mkdir()
    (root / "0" / PARTS_DIR / "视频.mp4.part").write_bytes(b"cut short")  # never part of the package
    form, scan = make_form(tmp_path / "报送表.docx", courses=[COURSE]), make_scan(tmp_path / "报送表.pdf")
    raw = mail(1, f"链接: {URL} 提取码: ab12", attachments={"报送表.docx": form.read_bytes(),
                                                           "报送表.pdf": scan.read_bytes()})
    fetched = FetchedPackage(root, {0: LinkFetch("baidu", URL, FETCHED, "0")})
    report = check_message(raw, POLICY, None, tmp_path / "work", fetched)
    assert report.verdict == "accepted", [f.message for f in report.findings]
    assert [p.name for p in report.projects] == [COURSE]
    assert not any(".part" in (p.files.get("video") or "") for p in report.projects)
    assert UNFINISHED == PARTS_DIR  # the core may not import the fetchers: one name, kept in step


def test_a_link_the_sender_must_mend_rejects_the_message(tmp_path):
    wrong = Finding("link.code_wrong", "提取码不正确。")
    fetched = FetchedPackage(tmp_path, {0: LinkFetch("baidu", URL, SENDER, findings=[wrong])})
    report = check_message(mail(1, f"{URL} 提取码 zz99"), POLICY, None, tmp_path / "w", fetched)
    assert report.verdict == "rejected" and codes(report) == ["link.code_wrong"]  # no package.empty beside it


def test_our_failure_is_needs_review_and_nothing_else_is_judged(tmp_path):
    failed = LinkFetch("baidu", URL, FAILED, reason="系统未配置百度网盘账号，无法自动下载")
    report = check_message(mail(1, f"{URL}?pwd=ab12"), POLICY, None, tmp_path / "w", FetchedPackage(tmp_path, {0: failed}))
    assert report.verdict == "needs_review" and codes(report) == ["link.fetch_failed"]
    assert "未配置百度网盘账号" in report.findings[0].message and "您无需重新发送" in report.findings[0].message


def test_a_reply_quoting_links_already_received_is_a_conversation(tmp_path):
    quoted = LinkFetch("baidu", URL, QUOTED, earlier="WX2024-000001")
    raw = mail(2, f"谢谢！\n\n> 链接: {URL} 提取码: ab12")
    report = check_message(raw, POLICY, None, tmp_path / "w", FetchedPackage(tmp_path, {0: quoted}))
    assert report.verdict == "ignored" and codes(report) == ["link.already_received"]
    assert "WX2024-000001" in report.findings[0].message


def test_the_stage_reads_the_links_the_core_judges(tmp_path):
    raw = mail(1, f"{URL} 提取码 ab12\nhttps://www.aliyundrive.com/s/xyz\nhttps://pan.baidu.com/s/1Second?pwd=cd34",
               attachments={"a.zip": b"PK"})
    found = message_links(raw)
    report = check_message(raw, POLICY, None, tmp_path / "w")
    assert [link.to_json() for link in found.links] == report.message["links"]
    assert [n for n, _ in found.fetchable()] == [0, 2]


def test_gather_numbers_a_name_taken_and_keeps_the_layout(tmp_path):
    attachments, share = tmp_path / "attachments", tmp_path / "share"
    (share / "作品").mkdir(parents=True)
    attachments.mkdir()
    (attachments / "报送表.pdf").write_bytes(b"a")
    (share / "报送表.pdf").write_bytes(b"b")
    (share / "作品" / "视频.mp4").write_bytes(b"v")
    target = gather(tmp_path / "package", attachments, [share])
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "作品/视频.mp4", "报送表 (2).pdf", "报送表.pdf"]
    assert (target / "报送表 (2).pdf").read_bytes() == b"b"
    assert (target / "作品" / "视频.mp4").stat().st_ino == (share / "作品" / "视频.mp4").stat().st_ino  # linked


def test_outcomes_survive_a_save_and_load(tmp_path):
    package = FetchedPackage(tmp_path, {3: LinkFetch("netease", "https://mail.163.com/x", FAILED, reason="r",
                                                     listing=[("a.mp4", 5)]),
                                        1: LinkFetch("baidu", URL, SENDER, findings=[Finding("link.unavailable", "失效")])})
    package.save(tmp_path / "outcome.json")
    loaded = FetchedPackage.load(tmp_path, tmp_path / "outcome.json")
    assert loaded.links == package.links and [link.url for link in loaded.of(FAILED, SENDER)] == [URL, "https://mail.163.com/x"]
    assert FetchedPackage.load(tmp_path, tmp_path / "missing.json").links == {}


def test_a_link_the_sender_must_mend_beside_one_we_could_not_fetch_rejects_and_asks_for_both(tmp_path):
    other = "https://pan.baidu.com/s/1ZyXwVuTs"
    wrong = Finding("link.code_wrong", "提取码不正确。")
    fetched = FetchedPackage(tmp_path, {0: LinkFetch("baidu", URL, FAILED, reason="我方原因"),
                                        1: LinkFetch("baidu", other, SENDER, findings=[wrong])})
    report = check_message(mail(1, f"{URL} 提取码 ab12\n{other} 提取码 zz99"), POLICY, None, tmp_path / "w", fetched)
    # not needs_review: the sender must send again anyway, and is told so now
    assert report.verdict == "rejected" and codes(report) == ["link.code_wrong", "link.fetch_failed"]
    asked = report.findings[1].message
    assert URL in asked and "一并附上此链接" in asked and "您无需重新发送" not in asked
