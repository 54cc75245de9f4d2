"""The pure core: judge a package against a policy and say why.

``check_package(path, policy, received_at)`` unpacks, finds the projects, runs every
check, and decides once. It knows nothing of mailboxes, databases or replies; the
CLI and (later) the daemon feed it and act on its Report.
"""

from __future__ import annotations

import tempfile
from typing import TypeVar
from datetime import datetime
from pathlib import Path, PurePosixPath

from intake.kernel.errors import ConfigError
from intake.kernel.budget import reading
from intake.kernel.fetched import FAILED, FETCHED, QUOTED, SENDER, FetchedPackage
from intake.kernel.findings import ERROR, Finding
from intake.kernel.policy import Policy, is_late
from intake.kernel.report import ProjectResult, Report, beijing_text
from intake.kernel.verdicts import Verdict
from intake.parsers.archives import Package, PackageFile, unpack
from intake.parsers.documents import Block, DocumentError, Table, all_text
from intake.parsers.layout import (
    AUDIO, CRAFTSMAN_WORDS, DOCUMENT, FORM, FORM_SCAN, IMAGE_SUFFIXES, LETTER, QUESTION_BANK, SCAN, VIDEO,
    Material, Project, blocks_of, classify, find_projects, sheets_of,
)
from intake.parsers.links import MAX_LINKS, find_links
from intake.parsers.mail_large import RawMessage
from intake.parsers.message_links import FETCHABLE
from intake.parsers.package_folder import gather
from intake.parsers.messages import LoadedMessage, parse_message
from intake.parsers.question_bank_header import looks_like_question_bank
from intake.parsers.spreadsheets import SheetError
from intake.validators.archive import archive_findings
from intake.validators.audio import check_audio
from intake.validators.declaration import check_declaration, declaration_score, looks_like_declaration
from intake.validators.document import check_document, sections
from intake.validators.form import course_findings, form_findings
from intake.validators.links import (already_received, failed_findings, nothing_attached, not_fetched_findings,
                                     resend_findings)
from intake.validators.message import with_message_findings
from intake.validators.photo import check_photos
from intake.validators.question_bank import check_question_bank
from intake.validators.video import check_video


def check_package(path: Path, policy: Policy, received_at: datetime | None = None,
                  workdir: Path | None = None) -> Report:
    """Judge a folder or archive. ``workdir`` receives the unpacked files (a temp dir if None)."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="intake-") as tmp:
            return check_package(path, policy, received_at, Path(tmp))
    package = unpack(Path(path), Path(workdir), policy.archive)
    report = judge(package, policy, received_at)
    report.source = str(path)
    return report


def check_message(raw: RawMessage, policy: Policy, received_at: datetime | None = None,
                  workdir: Path | None = None, fetched: FetchedPackage | None = None,
                  loaded: LoadedMessage | None = None) -> Report:
    """Judge one email: what it carries (attachments, links) is its package.

    received_at: the mailbox's time if known (``--received-at``, INTERNALDATE), else
    the newest Received: header, else Date:. ``fetched``: what fetching its links came
    to (the daemon's ``fetching`` stage, ``intake check``); the files fetched are judged
    with the attachments, as if attached. Without it a message with fetchable links is
    ``needs_review`` and nothing else is judged. ``loaded``: the message's structure,
    parsed before (``intake.parsers.messages.load_message``) when its links were read.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="intake-") as tmp:
            return check_message(raw, policy, received_at, Path(tmp), fetched, loaded)
    workdir = Path(workdir)
    parsed = parse_message(raw, workdir / "attachments", loaded)
    found = [] if parsed.ignored_reason else find_links(parsed.texts, parsed.htmls)
    links = found[:MAX_LINKS]  # the rest: one link.too_many, not a finding per link
    moment = received_at or parsed.received or parsed.date
    message = {
        "from": parsed.from_address,
        "subject": parsed.subject,
        "auto_submitted": parsed.auto_submitted,
        "attachments": parsed.shown,
        "links": [link.to_json() for link in links],
    }
    late = [late_finding(moment, policy)] if moment is not None and is_late(moment, policy) else []
    fetchable = [link for link in links if link.provider in FETCHABLE]
    fetched = fetched if fetchable else None
    if parsed.ignored_reason:
        report = Report(Verdict.IGNORED, policy.name, moment, None, ignored_reason=parsed.ignored_reason)
    elif fetchable and (fetched is None or (fetched.of(FAILED) and not fetched.sender_problems())):
        # our side could not fetch: staff look, nothing else is judged (no form.missing)
        sender = fetched.sender_problems() if fetched else []
        failed = failed_findings(fetched.of(FAILED)) if fetched else not_fetched_findings(fetchable)
        report = Report(Verdict.REJECTED if late else Verdict.NEEDS_REVIEW, policy.name, moment, None, [],
                        late + sender + failed)
    elif fetched is not None and not parsed.attachments and len(fetched.of(QUOTED)) == len(fetchable):
        # a reply quoting links the unit's earlier submission brought: a conversation
        report = Report(Verdict.IGNORED, policy.name, moment, None, [], [already_received(fetched.of(QUOTED))],
                        ignored_reason="quoted links already received")
    else:
        # a link the sender must mend: the links we could not fetch are asked for again with it
        from_links = fetched.sender_problems() + resend_findings(fetched.of(FAILED)) if fetched else []
        folders = fetched.folders() if fetched else []
        if not parsed.attachments and not folders:
            other = [] if fetchable else [nothing_attached(links)]
            report = decide(policy, moment, None, [], late + from_links + other)
        else:
            source = gather(workdir / "package", workdir / "attachments", folders) if folders else workdir / "attachments"
            package = unpack(source, workdir / "unpacked", policy.archive)
            package.root_name = parsed.subject or "附件"
            report = judge(package, policy, moment, from_links)
    report.message = message  # then what the message's shape kept from being read
    return report if parsed.ignored_reason else with_message_findings(report, parsed.too_deep, len(found))


def judge(package: Package, policy: Policy, received_at: datetime | None, link_findings: list[Finding] | None = None) -> Report:
    """``link_findings``: the sender's problems with the message's links (a wrong code, a
    dead share), after the lateness finding."""
    unpack_findings = archive_findings(package.problems)
    findings: list[Finding] = list(unpack_findings)
    if received_at is not None and is_late(received_at, policy):
        findings.append(late_finding(received_at, policy))
    findings += link_findings or []

    materials = [Material(f, _classified(f)) for f in package.files]
    projects = find_projects(materials, package.root_name, project_kinds(policy))
    in_projects = {m.rel for p in projects for m in p.materials}
    forms = [m for m in materials if m.kind == FORM]
    scans = [m for m in materials if m.kind in (SCAN, FORM_SCAN) and m.rel not in in_projects]

    archive_failed = any(f.code.startswith("archive.") for f in unpack_findings)
    unit = None
    missing_courses: list[str] = []
    if not package.files and not archive_failed:
        findings.append(Finding(
            "package.empty",
            "没有收到任何材料（附件或压缩包为空）。请将报送表和各项目的视频、文档、题库打包后重新发送。",
        ))
    elif package.files:
        form, form_problems = form_findings(forms, scans)
        if not policy.form_required:
            form_problems = [f for f in form_problems if f.code not in ("form.missing", "form.scan_missing")]
        findings += form_problems
        unit = form.unit
        _make_names_unique(projects)
        if form.courses:
            missing_courses, matched_problems = course_findings(
                projects, form.courses, form.editable[0] if form.editable else None)
            findings += matched_problems
            # report projects in the form's order; unlisted ones after them
            order = {course: i for i, course in enumerate(form.courses)}
            projects.sort(key=lambda p: (order.get(p.name, len(order)), p.folder))
        if not projects and not archive_failed:
            findings.append(Finding(
                "package.no_projects",
                f"材料中没有找到任何{_unit_word(policy)}（每个{_unit_word(policy)}应包含{_contents(policy)}）。"
                f"请按“一个{_unit_word(policy)}一个文件夹”整理材料后重新发送。",
            ))

    results = []
    for project in projects:
        project_findings, files = check_project(project, policy)
        findings += project_findings
        results.append(ProjectResult(project.name, Verdict.ACCEPTED, files, project.folder))
    for course in missing_courses:
        results.append(ProjectResult(course, Verdict.REJECTED, empty_files(policy)))
    return decide(policy, received_at, unit, results, findings)


CHECK_WORDS = {"video": "视频", "document": "Word 文档", "question_bank": "题库", "photos": "照片",
               "audio": "音频", "declaration": "申报表", "letters": "授权书和承诺书"}


def _unit_word(policy: Policy) -> str:
    return "成果" if "declaration" in policy.checks else "项目"


def _contents(policy: Policy) -> str:
    return "、".join(CHECK_WORDS[c] for c in policy.checks)


def decide(policy: Policy, received_at: datetime | None, unit: str | None, results: list[ProjectResult], findings: list[Finding]) -> Report:
    """Run-everything-then-decide: one verdict from all findings."""
    failing = {f.project for f in findings if f.severity == ERROR}
    for result in results:
        if result.name in failing:
            result.verdict = Verdict.REJECTED
    message_failed = None in failing
    if message_failed:
        # late, unsafe, unreadable, no form: nothing in this message is taken
        for result in results:
            result.verdict = Verdict.REJECTED
    passing = [r for r in results if r.verdict == Verdict.ACCEPTED]
    if message_failed or not passing:
        verdict = Verdict.REJECTED
    elif len(passing) == len(results):
        verdict = Verdict.ACCEPTED
    else:
        verdict = Verdict.PARTIAL
    return Report(verdict, policy.name, received_at, unit, results, findings)


KINDS_OF_CHECK = {
    "video": (VIDEO,), "document": (DOCUMENT,), "question_bank": (QUESTION_BANK,),
    "photos": (SCAN,), "audio": (AUDIO,), "declaration": (DOCUMENT,), "letters": (LETTER,),
}


FILE_KEYS: dict[str, tuple[str, list | None]] = {"video": ("video", None), "document": ("document", None), "question_bank": ("question_bank", None),
             "photos": ("photos", []), "audio": ("audio", None), "declaration": ("declaration", None),
             "letters": ("letters", [])}


def empty_files(policy: Policy) -> dict:
    """The files object of a project that sent nothing (a course only the form lists)."""
    files: dict[str, list | None] = {}
    for check in policy.checks:
        key, empty = FILE_KEYS[check]
        files[key] = list(empty) if empty is not None else None
    return files


def project_kinds(policy: Policy) -> tuple[str, ...]:
    """The kinds of file a project is made of under this policy."""
    return tuple(dict.fromkeys(kind for check in policy.checks for kind in KINDS_OF_CHECK[check]))


def check_project(project: Project, policy: Policy) -> tuple[list[Finding], dict]:
    """Every check the policy lists, on one project; findings and the files judged."""
    findings: list[Finding] = []
    files: dict = {}
    for check in policy.checks:
        more, chosen = PROJECT_CHECKS[check](project, policy)
        findings += more
        files.update(chosen)
    return findings, files


CheckResult = tuple[list[Finding], dict]
RulesT = TypeVar("RulesT")


def _rules(rules: RulesT | None, table: str) -> RulesT:
    """A policy's rules for a check it lists (the policy loader fills them in)."""
    if rules is None:
        raise ConfigError(f"policy: the {table} check needs a [{table}] table")
    return rules


def _missing(code: str, project: Project, message: str) -> Finding:
    return Finding(code, message, project.name, project.folder or None)


def _check_videos(project: Project, policy: Policy) -> CheckResult:
    name = project.name
    videos = [m for m in project.of_kind(VIDEO) if not _is_craftsman(m, project)] or project.of_kind(VIDEO)[:1]
    findings = []
    if not videos:
        findings.append(_missing("video.missing", project, f"项目“{name}”中没有视频。请提交一段 MP4 格式、"
                                 f"{policy.video.width}×{policy.video.height}、不超过 "
                                 f"{policy.video.max_seconds / 60:g} 分钟的视频。"))
    for video in videos:
        reading(video.rel)
        findings += check_video(video.file.path, video.rel, name, policy.video)
    return findings, {"video": videos[0].rel if videos else None}


def _check_document(project: Project, policy: Policy) -> CheckResult:
    rules = _rules(policy.document, "document")
    document = _pick_document(project)
    if document is None:
        return [_missing("document.missing", project, f"项目“{project.name}”中没有 Word 文档。请提交包含“导师简介”"
                         f"（不超过 {rules.mentor_intro_max_chars} 字）和“视频简介”"
                         f"（不超过 {rules.video_intro_max_chars} 字）的 Word 文档。")], {"document": None}
    reading(document.rel)
    return check_document(document.file.path, document.rel, project.name, rules), {"document": document.rel}


def _check_question_bank(project: Project, policy: Policy) -> CheckResult:
    banks = project.of_kind(QUESTION_BANK)
    if not banks:
        return [_missing("question_bank.missing", project, f"项目“{project.name}”中没有题库。请按附件6模板提交"
                         f"不少于 {policy.question_bank.min_questions} 道题的题库（Excel）。")], {"question_bank": None}
    bank = min(banks, key=lambda m: (not _has_bank_header(m), m.rel))  # a declaration sheet is not it
    reading(bank.rel)
    return (check_question_bank(bank.file.path, bank.rel, project.name, policy.question_bank),
            {"question_bank": bank.rel})


def _has_bank_header(material: Material) -> bool:
    try:
        reading(material.rel)
        return looks_like_question_bank(sheets_of(material.file.path))
    except Exception:  # unreadable: the check itself reports it
        return False


def _check_photos(project: Project, policy: Policy) -> CheckResult:
    photos = [m for m in project.of_kind(SCAN) if PurePosixPath(m.rel).suffix.lower() in IMAGE_SUFFIXES]
    reading(project.folder or project.name)
    found = check_photos([(m.file.path, m.rel) for m in photos], project.name, project.folder or None,
                         _rules(policy.photo, "photo"))
    return found, {"photos": [m.rel for m in photos]}


def _check_audio(project: Project, policy: Policy) -> CheckResult:
    audio = project.of_kind(AUDIO)
    if not audio:
        return [_missing("audio.missing", project, f"成果“{project.name}”中没有音频。请提交 MP3 格式的音频文件。")], {"audio": None}
    findings = []
    for item in audio:
        reading(item.rel)
        findings += check_audio(item.file.path, item.rel, project.name)
    return findings, {"audio": audio[0].rel}


def _check_declaration(project: Project, policy: Policy) -> CheckResult:
    """The file holding most of the declaration's fields is the declaration."""
    best, best_score, best_blocks = None, 0, None
    for material in sorted(project.of_kind(DOCUMENT) + project.of_kind(QUESTION_BANK), key=lambda m: m.rel):
        reading(material.rel)
        blocks = declaration_blocks(material.file.path)
        if not blocks:
            continue
        score = declaration_score(all_text(blocks)) + (2 if "申报" in material.rel.rsplit("/", 1)[-1] else 0)
        if looks_like_declaration(all_text(blocks)) and score > best_score:
            best, best_score, best_blocks = material, score, blocks
    if best is None or best_blocks is None:
        return [], {"declaration": None}
    rules = _rules(policy.declaration, "declaration")
    return check_declaration(best_blocks, best.rel, project.name, rules), {"declaration": best.rel}


def _check_letters(project: Project, policy: Policy) -> CheckResult:
    letters = project.of_kind(LETTER)
    names = [PurePosixPath(m.rel).name for m in letters]
    findings = []
    # a combined 附件1 holds both letters
    for code, words, title in (("authorization.missing", ("授权", "附件1"), "授权书"),
                               ("pledge.missing", ("承诺", "声明", "附件1"), "真实性承诺书")):
        if not any(any(w in n for w in words) for n in names):
            findings.append(_missing(code, project, f"成果“{project.name}”中没有{title}（附件1）。"
                                     f"请按附件1填写{title}，签字盖章后扫描（PDF 或 JPG），文件名中注明“{title}”一并提交。"))
    return findings, {"letters": [m.rel for m in letters]}


PROJECT_CHECKS = {
    "video": _check_videos, "document": _check_document, "question_bank": _check_question_bank,
    "photos": _check_photos, "audio": _check_audio, "declaration": _check_declaration,
    "letters": _check_letters,
}


def declaration_blocks(path: Path) -> list[Block] | None:
    """A declaration as blocks: a Word document as is, a sheet as tables."""
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            return [Table(tuple(cells for _, cells in sheet.rows)) for sheet in sheets_of(path)]
        return blocks_of(path)
    except (DocumentError, SheetError):
        return None


def _classified(file: PackageFile) -> str:
    reading(file.rel)  # classifying opens Word files and sheets: a budget stop names the file
    return classify(file)


def _is_craftsman(material: Material, project: Project) -> bool:
    """工匠 in the path below the project folder (a course may be called 工匠精神…)."""
    prefix = f"{project.folder}/" if project.folder else ""
    below = material.rel[len(prefix):] if material.rel.startswith(prefix) else material.rel
    return any(word in below for word in CRAFTSMAN_WORDS)


def _pick_document(project: Project) -> Material | None:
    """The document holding the profiles: the first that has either section."""
    documents = sorted(project.of_kind(DOCUMENT), key=lambda m: (_is_craftsman(m, project), m.rel))
    for document in documents:
        try:
            found = sections(document.file.path)
        except Exception:
            continue
        if any(found.values()):
            return document
    return documents[0] if documents else None


def _make_names_unique(projects: list[Project]) -> None:
    seen: dict[str, int] = {}
    for project in projects:
        count = seen.get(project.name, 0)
        seen[project.name] = count + 1
        if count:
            project.name = f"{project.name}（{project.folder or PurePosixPath(project.name).name}）"


def late_finding(received_at: datetime, policy: Policy) -> Finding:
    got, due = beijing_text(received_at), beijing_text(policy.deadline)
    return Finding(
        "deadline.late",
        f"本次报送于北京时间 {got} 收到，晚于截止时间 {due}。按通知要求，逾期上报无效，本次材料不予受理。",
    )
