"""Run the fakes by hand: `PYTHONPATH=. python -m tests.fakes` starts them with a sample
share, account and app, prints what a client needs as JSON, and serves until Ctrl-C."""

from __future__ import annotations

import json
import signal
import threading

from .netdisk import FakeNetdisk


def main() -> None:
    with FakeNetdisk() as fake:
        share = fake.add_share({"路演作品/路演视频.mp4": 20 * 1024 * 1024, "路演作品/申报书.txt": "申报书"},
                               code="ab12")
        account, app = fake.add_account(), fake.add_app()
        attachment = fake.add_attachment("netease", "路演视频.mp4", 5 * 1024 * 1024)
        print(json.dumps({
            "INTAKE_HOST_MAP": fake.host_map, "share": share.link_text, "INTAKE_BAIDU_COOKIE": account.cookie,
            "INTAKE_BAIDU_APP_KEY": app.app_key, "INTAKE_BAIDU_SECRET_KEY": app.secret_key,
            "INTAKE_BAIDU_APP_ID": app.app_id, "netease_attachment": fake.attachment_url(attachment),
        }, ensure_ascii=False, indent=2), flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
