"""A real SMTP server (aiosmtpd) with scripted answers, for the adapters-smtp tests.

Started by the Rust tests as `python3 -u scripted_smtp.py --port N --script FILE [options]`.
It prints one JSON object per line on stdout:

  {"event": "ready", "port": N}                    once it listens
  {"event": "message", "mail_from": ..., "rcpt_tos": [...], "data_b64": ...,
   "defects": [...], "auth": login-or-null, "tls": bool}   for every accepted message
  {"event": "rejected", "code": 451|550, "stage": "DATA"|"RCPT"}  for every scripted refusal

The script file decides what the next transaction gets, one word per line:
  accept   take the message
  451      refuse it at DATA with "451 4.3.0 try again later"
  550      refuse the recipient at RCPT with "550 5.1.1 <address>: unknown user"
The first line is used for a transaction (chosen at MAIL FROM) and removed if more lines follow,
so "451\n451\naccept" answers 451 twice, then accepts forever. The file is read on every
transaction: a test rewrites it to change the behaviour of a running server.

`defects` lists what Python's email parser (policy=default) found wrong with the message: an
independent check that what we send is well-formed MIME.
"""

import argparse
import asyncio
import base64
import email
import email.policy
import json
import signal
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# Tests authenticate over plain loopback on purpose.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Script:
    def __init__(self, path):
        self.path = path

    def next(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = [line.strip() for line in f if line.strip()]
        except FileNotFoundError:
            lines = []
        if not lines:
            return "accept"
        if len(lines) > 1:
            with open(self.path, "w", encoding="utf-8") as f:
                f.write("\n".join(lines[1:]) + "\n")
        return lines[0]


class Handler:
    def __init__(self, script):
        self.script = script

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.scripted = self.script.next()
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if getattr(envelope, "scripted", "accept") == "550":
            emit({"event": "rejected", "code": 550, "stage": "RCPT"})
            return "550 5.1.1 <%s>: Recipient address rejected: unknown user" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if getattr(envelope, "scripted", "accept") == "451":
            emit({"event": "rejected", "code": 451, "stage": "DATA"})
            return "451 4.3.0 Temporary failure, try again later"
        data = envelope.original_content or envelope.content
        msg = email.message_from_bytes(data, policy=email.policy.default)
        defects = [type(d).__name__ for d in msg.defects]
        for part in msg.walk():
            defects.extend(type(d).__name__ for d in part.defects)
        auth = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        emit(
            {
                "event": "message",
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data_b64": base64.b64encode(data).decode(),
                "defects": defects,
                "auth": auth,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
            }
        )
        return "250 2.0.0 Message accepted"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--script", required=True)
    p.add_argument("--auth", help="user:password that AUTH must present")
    p.add_argument("--cert", help="PEM certificate for STARTTLS or implicit TLS")
    p.add_argument("--key", help="PEM key for --cert")
    p.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    args = p.parse_args()

    ctx = None
    if args.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)

    authenticator = None
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            # handled=False: let aiosmtpd answer 235 or 535 itself.
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

    handler = Handler(Script(args.script))

    def factory():
        kwargs = {"decode_data": False, "enable_SMTPUTF8": True}
        if authenticator is not None:
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=args.tls != "none")
        if args.tls == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        return SMTP(handler, **kwargs)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            factory, host=args.host, port=args.port, reuse_address=True,
            ssl=ctx if args.tls == "implicit" else None,
        )
    )
    port = server.sockets[0].getsockname()[1]
    emit({"event": "ready", "port": port})
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.run_until_complete(stop)
    server.close()
    loop.run_until_complete(server.wait_closed())


if __name__ == "__main__":
    main()
