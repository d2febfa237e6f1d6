"""A real SMTP server for the integration tests (aiosmtpd on 127.0.0.1).

Usage: python3 tests/smtp_sink.py OUT_DIR [--starttls CERT KEY | --tls CERT KEY] [--auth USER:PASSWORD]
  --starttls  offer STARTTLS and refuse MAIL before it (a submission server on port 587)
  --tls       TLS from the first byte (port 465)
  --auth      require AUTH with these credentials (over TLS when TLS is on, else in clear text)
Prints the port it listens on, then serves until its standard input closes. Each message is
written to OUT_DIR/NNNN.json (atomically, before the server answers 250) as
{"mail_from", "rcpt_tos", "headers": [[name, value], ...], "text", "html", "raw", "tls", "auth_user"}.
"""

import argparse
import json
import os
import socket
import ssl
import sys
import warnings
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


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
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth_user": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
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


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == self.user and auth_data.password == self.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


def main():
    warnings.simplefilter("ignore", DeprecationWarning)
    args = argparse.ArgumentParser()
    args.add_argument("out")
    args.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    args.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args.add_argument("--auth", metavar="USER:PASSWORD")
    a = args.parse_args()
    options = {}
    for pair, key in ((a.starttls, "tls_context"), (a.tls, "ssl_context")):
        if pair:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*pair)
            options[key] = context
    if a.starttls:
        options["require_starttls"] = True
    if a.auth:
        user, password = a.auth.split(":", 1)
        options["authenticator"] = Authenticator(user, password)
    # Without TLS options, AUTH is taken in clear text, as a careless server would: a client must
    # refuse to send its password there.
    options["auth_require_tls"] = bool(a.starttls or a.tls)
    port = free_port()
    controller = Controller(Handler(a.out), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print(port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
