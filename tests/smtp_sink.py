"""A real SMTP server for the integration tests (aiosmtpd on 127.0.0.1).

Usage: python3 tests/smtp_sink.py OUT_DIR
Prints the port it listens on, then serves until its standard input closes. Each message is
written to OUT_DIR/NNNN.json (atomically, before the server answers 250) as
{"mail_from", "rcpt_tos", "headers": [[name, value], ...], "text", "html", "raw"}.
"""

import json
import os
import socket
import sys
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "raw": (envelope.original_content or envelope.content).decode("utf-8", "replace"),
        }
        tmp = os.path.join(self.out, f".{self.count:04}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, f"{self.count:04}.json"))
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    out = sys.argv[1]
    port = free_port()
    controller = Controller(Handler(out), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
