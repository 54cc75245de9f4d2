"""A collection in the tracking database as the daemon leaves it, for the digest tests:
several units with quotas, every verdict, a superseded project, a late report, a
quarantined message, one answered nowhere, a refused reply, a held one, a staff mail
left uncertain in sending and one being sent right now, and the mailbox's status. The
rows are written with the store's models (the same ones the daemon writes), with times
relative to `now`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import sessionmaker

from intake.daemon.delivery import UNCERTAIN
from intake.store import FindingRow, Message, Outbox, Project, ServiceStatus, Unit, UnitContact

UNITS = [("湖北省总工会", 3, "hbzgh@126.com"), ("北京市总工会", 2, "bjzgh@163.com"),
         ("中国海员建设工会全国委员会", 2, "hyjs@163.com"), ("西藏自治区总工会", 2, "xzzgh@163.com"),
         ("四川省总工会", 3, "sczgh@qq.com")]

# (hours before now, unit, sender, verdict, state, projects [(name, verdict, superseded, late)], findings)
MESSAGES = [
    (2, "湖北省总工会", "hbzgh@126.com", "accepted", "done",
     [("班组安全隐患排查", "accepted"), ("焊接工艺五小创新", "accepted")], []),
    (30, "湖北省总工会", "hbzgh@126.com", "partial", "done",
     [("设备点检小妙招", "accepted"), ("配电柜防误操作", "rejected")],
     [("配电柜防误操作", "video.too_long", "error", "视频时长为 6 分 12 秒，超过 5 分钟，请剪辑后重新报送。", "配电柜防误操作/视频.mp4"),
      (None, "form.scan_missing", "warning", "未找到加盖公章的报送表扫描件。", None)]),
    (5, "北京市总工会", "bjzgh@163.com", "accepted", "done",
     [("地铁检修工具改进", "accepted"), ("公交调度小发明", "accepted")],
     [("地铁检修工具改进", "duplicate.resubmission", "info", "本项目替换此前报送的同名项目（回执号 WX2024-000004），以本次为准。", None)]),
    (50, "北京市总工会", "bjzgh@163.com", "rejected", "done",
     [("地铁检修工具改进", "rejected")],
     [("地铁检修工具改进", "video.resolution", "error", "视频分辨率为 1280×720，应为 1920×1080。", "地铁检修工具改进/视频.mp4")]),
    (1, "中国海员建设工会全国委员会", "hyjs@163.com", "rejected", "done",
     [("船舶焊接机器人", "rejected")],
     [(None, "deadline.late", "error", "本邮件于截止时间之后收到，逾期上报无效。", None)]),
    (3, "四川省总工会", "sczgh@qq.com", "needs_review", "done", [],
     [(None, "link.fetch_failed", "error", "百度网盘链接暂时无法下载（未配置网盘账号），工作人员将人工核对。", None)]),
    (4, None, "noreply@example.cn", "ignored", "done", [], []),
    (6, None, "unknown@example.cn", None, "quarantined", [], []),
    (10, None, None, "rejected", "done", [("无名项目", "rejected")],
     [("无名项目", "question_bank.too_few", "error", "题库只有 12 道有效试题，至少需要 20 道。", "无名项目/题库.xlsx")]),
    (12, "四川省总工会", "sczgh@qq.com", "accepted", "done", [("=SUM(A1) 班组创新", "accepted")], []),
    (0.5, None, "new@example.cn", None, "received", [], []),
]
SEEDED_DIGEST = "digest:yesterday"
OTHER_WORKER = "worker-b.example:4242:-:1"  # a worker id of another host: only its lease tells
LATE_RECEIPT, SUPERSEDED = "WX2024-000005", ("WX2024-000004", "地铁检修工具改进")


def receipt(index: int) -> str:
    return f"WX2024-{index + 1:06d}"


def seed(Session: sessionmaker, now: datetime) -> None:
    with Session.begin() as session:
        units = {}
        for name, quota, address in UNITS:
            unit = Unit(name=name, quota=quota)
            session.add(unit)
            session.flush()
            session.add(UnitContact(unit_id=unit.id, email=address))
            units[name] = unit
        rows = []
        for index, (hours, unit, sender, verdict, state, projects, findings) in enumerate(MESSAGES):
            message = Message(
                receipt=receipt(index), mailbox="imap:collect@163.com@imap.163.com/INBOX", uidvalidity=1,
                uid=index + 1, sha256=f"{index:064d}", raw_path=f"/data/raw/{index}.eml",
                received_at=now - timedelta(hours=hours), from_address=sender,
                from_header=sender or "湖北省总工会 <a@b.cn>, 办公室 <c@d.cn>", subject=f"报送材料 {index + 1}",
                state=state, verdict=verdict, unit_id=units[unit].id if unit else None, unit_name=unit,
                report=None if verdict is None else {"verdict": verdict, "findings": []},
                last_error=("PermanentError: archive.corrupt 之外的未知错误：7zz exited with 2" if state == "quarantined"
                            else None), attempts=5 if state == "quarantined" else 1)
            session.add(message)
            session.flush()
            rows.append(message)
            late = receipt(index) == LATE_RECEIPT
            for name, project_verdict in projects:
                session.add(Project(message_id=message.id, unit_id=message.unit_id, unit_name=unit, name=name,
                                    name_key=name, verdict=project_verdict, late=late,
                                    files={"video": f"{name}/视频.mp4", "document": f"{name}/说明.docx"}))
            for project, code, severity, text, path in findings:
                session.add(FindingRow(message_id=message.id, project=project, code=code, severity=severity,
                                       text=text, path=path))
        session.flush()
        _supersede(session, rows)
        _outbox(session, rows, now)
        session.add(ServiceStatus(name="mailbox", ok=False, at=now - timedelta(minutes=1),
                                  last_ok_at=now - timedelta(minutes=20),
                                  detail="TransientError: imap.163.com: connection timed out"))
        session.add(ServiceStatus(name="smtp", ok=True, at=now - timedelta(minutes=2),
                                  last_ok_at=now - timedelta(minutes=2), detail="2 sent"))


def _supersede(session, rows) -> None:
    old = next(p for p in session.query(Project).filter_by(message_id=rows[3].id))
    new = next(p for p in session.query(Project).filter_by(message_id=rows[2].id, name=SUPERSEDED[1]))
    old.superseded_by = new.id


def _outbox(session, rows, now) -> None:
    def reply(message, state, **values):
        session.add(Outbox(message_id=message.id, kind="reply", recipient=message.from_address or "",
                           subject=f"【回执 {message.receipt}】", raw="", state=state,
                           created_at=now - timedelta(hours=1), **values))

    for index in (0, 1, 2, 4, 5):
        reply(rows[index], "sent", sent_at=now - timedelta(hours=1))
    reply(rows[3], "held")  # over the per-sender cap
    reply(rows[9], "failed", last_error="554 DT:SPM 163 smtp14,EsCowAB 发送的邮件内容包含了未被许可的信息")
    # a digest whose sender died mid-send (found so by a delivery pass: uncertain), and an
    # alert another host's worker is sending right now (within the lease: in hand)
    session.add(Outbox(kind="digest", dedupe_key=SEEDED_DIGEST, recipient="staff@acftu.org",
                       subject="【报送日报】昨天", raw="", state="sending", sending_by=OTHER_WORKER,
                       last_error=UNCERTAIN, created_at=now - timedelta(hours=3), updated_at=now - timedelta(hours=3)))
    session.add(Outbox(kind="alert", dedupe_key="alert:fresh:1:down", recipient="staff@acftu.org",
                       subject="【报送系统告警】正在发送", raw="", state="sending", sending_by=OTHER_WORKER,
                       created_at=now - timedelta(minutes=1), updated_at=now - timedelta(minutes=1)))
