#!/usr/bin/env python3
"""A local SMTP sink for the alerter's e-mail tests (aiosmtpd, an independent SMTP implementation).

Writes every message it accepts to DIR/<n>.eml with the envelope (MAIL FROM, RCPT TO, whether the session was TLS,
the authenticated user) in X-Sink-* headers on top. With --tls-cert/--tls-key it offers STARTTLS and refuses mail
before it; with --user/--password it requires AUTH (and aiosmtpd refuses AUTH before STARTTLS). Prints "ready" once
listening, then serves until killed.
"""
import argparse, asyncio, os, ssl, sys, time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        head = "X-Sink-From: %s\r\nX-Sink-To: %s\r\nX-Sink-TLS: %s\r\nX-Sink-User: %s\r\n" % (
            envelope.mail_from, ",".join(envelope.rcpt_tos), "yes" if session.ssl else "no",
            session.auth_data.login.decode() if session.authenticated and session.auth_data else "-")
        path = os.path.join(self.directory, "%d.eml" % self.count)
        with open(path + ".tmp", "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 OK stored"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()
    kwargs = {}
    if a.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.tls_cert, a.tls_key)
        kwargs.update(tls_context=context, require_starttls=True)
    if a.user:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == a.user and auth_data.password.decode() == a.password
            # handled=False: aiosmtpd sends the 235/535 reply itself.
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(a.tls_cert))
    controller = Controller(Sink(a.dir), hostname="127.0.0.1", port=a.port, server_hostname="sink.local", **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
