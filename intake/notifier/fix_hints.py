"""How to fix a finding, for the codes whose message may not say it.

The findings' own messages mostly end in an instruction (请……); a reply adds the hint
of this table only to a message that holds none, so a sender is never told the same
thing twice and never left without what to do. deadline.late has no fix (逾期上报无效)
and link.fetch_failed is not the sender's to fix: neither has a hint.
"""

from __future__ import annotations

import re

FIX_HINTS: dict[str, str] = {
    "package.empty": "请将报送表和各项目材料作为附件发送，或发送百度网盘分享链接并附提取码。",
    "package.no_projects": "请按“一个项目一个文件夹”整理材料后重新发送。",
    "package.too_complex": "请检查文件是否损坏，或另存为标准格式后重新发送。",
    "link.unsupported": "请改用百度网盘分享链接（附提取码），或将材料直接作为附件发送。",
    "link.code_wrong": "请核对提取码，在邮件正文中写明分享链接及正确的提取码后重新发送。",
    "link.unavailable": "请在百度网盘重新创建分享链接（有效期建议选择“永久有效”），连同提取码重新发送。",
    "link.too_many": "请将材料整理打包，每个项目只发送一个网盘链接并附提取码。",
    "message.too_deep": "请不要多层转发，将材料直接放入一封新邮件后重新发送。",
    "archive.encrypted": "请取消压缩包及其中文件的密码后重新打包发送。",
    "archive.corrupt": "请在本机确认压缩包能正常解压、其中文件能正常打开后，重新打包发送。",
    "archive.unsafe_path": "请直接打包文件本身（不要包含快捷方式、链接或“..”路径）后重新发送。",
    "archive.too_large": "请删除与报送无关的文件、只保留一层压缩后重新打包发送。",
    "form.missing": "请按附件5填写报送表并加盖单位公章，将盖章扫描件和可编辑版与项目材料一并发送。",
    "form.course_not_in_package": "请补发该课程的全部材料，或核对报送表中的课程名称与文件夹名称是否一致。",
    "form.course_not_listed": "请在报送表中补充该课程，或使文件夹名称与报送表中的课程名称一致。",
    "form.scan_missing": "请将加盖单位公章的报送表扫描件（PDF 或图片）一并发送。",
    "video.missing": "请按通知要求提交 MP4 格式、1920×1080 横屏、时长符合要求的视频。",
    "video.not_mp4": "请用视频软件导出或转换为 MP4 格式（H.264 编码）后重新提交。",
    "video.too_long": "请将视频剪辑到通知规定的时长以内后重新提交。",
    "video.resolution": "请以 1920×1080（1080P 横屏）重新导出视频后提交。",
    "video.unreadable": "请确认视频在本机能正常播放后，重新提交 MP4 格式的视频。",
    "document.missing": "请提交包含“导师简介”和“视频简介”的 Word 文档。",
    "document.unreadable": "请用 Word 另存为 .docx 格式后重新提交。",
    "document.mentor_intro_missing": "请在文档中加入标题“导师简介”，并在其后填写内容。",
    "document.mentor_intro_too_long": "请将“导师简介”精简到规定字数以内。",
    "document.video_intro_missing": "请在文档中加入标题“视频简介”，并在其后填写内容。",
    "document.video_intro_too_long": "请将“视频简介”精简到规定字数以内。",
    "document.read_partly": "请删除文件中多余的空段落、空行和与报送无关的内容后重新提交。",
    "question_bank.missing": "请按附件6模板提交题库（Excel）。",
    "question_bank.unreadable": "请用 Excel 另存为 .xlsx 格式后重新提交。",
    "question_bank.bad_header": "请使用附件6模板，表头依次为：题型、题目内容、答案A至答案F、正确答案、解析、试题难度、来源。",
    "question_bank.too_few": "请补足符合附件6模板的试题数量。",
    "question_bank.invalid_question": "请按附件6模板修改该行的题型、选项、正确答案或试题难度。",
    "photo.too_few": "请补充照片（JPG 格式，不低于 300 dpi，每张 1 MB 至 10 MB）。",
    "photo.not_jpg": "请用原图导出为 JPG 格式（不要只改扩展名）后重新提交。",
    "photo.low_dpi": "请使用相机原图，或将分辨率设为 300 dpi 以上后导出 JPG。",
    "photo.bad_size": "请使用清晰的原图，每张照片大小在 1 MB 至 10 MB 之间。",
    "audio.not_mp3": "请用音频软件转换为 MP3 格式后重新提交。",
    "audio.missing": "请提交 MP3 格式的音频文件。",
    "declaration.name_too_long": "请精简成果名称。",
    "declaration.summary_too_long": "请将成果简介精简到规定字数以内。",
    "declaration.background_too_long": "请精简成果背景。",
    "declaration.too_many_completers": "请保留主要完成人，删减到规定人数以内。",
    "declaration.bad_category": "请从通知规定的成果类别中选择一项填写。",
    "declaration.new_productivity_missing": "请在申报表中填写“是否为新质生产力”（是或否）。",
    "authorization.missing": "请按附件1填写授权书，签字盖章后扫描，一并提交。",
    "pledge.missing": "请按附件1填写真实性承诺书，签字盖章后扫描，一并提交。",
    "quota.exceeded": "请确认需要保留的项目，工作人员将与贵单位联系。",
}

# what the findings quote (file, course and folder names: the sender's words) is not ours
_QUOTED = re.compile(r"“[^”]*”")

# codes that need no hint: nothing to fix (void), or nothing the sender caused
NO_HINT = frozenset({"deadline.late", "link.fetch_failed"})


def fix_hint(code: str, message: str) -> str | None:
    """The hint to show under a finding: only where its message gives no instruction."""
    if "请" in _QUOTED.sub("", message):  # every fix the findings write starts so (请剪辑……)
        return None
    return FIX_HINTS.get(code)
