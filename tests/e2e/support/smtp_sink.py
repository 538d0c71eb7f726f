"""A real SMTP server (aiosmtpd) that accepts every message, for Portal's end-to-end tests.

Started by the Rust harness as `python3 -u smtp_sink.py` (aiosmtpd on PYTHONPATH). It listens on a
free loopback port and prints one JSON object per line on stdout:

  {"event": "ready", "port": N}                                        once it listens
  {"event": "message", "mail_from": ..., "rcpt_tos": [...], "data_b64": ..., "defects": [...]}
                                                                        for every accepted message

`defects` lists what Python's own e-mail parser found wrong with the message: a check, independent
of the Rust side, that what Portal sends is well-formed MIME. SIGTERM or SIGINT stops it.
"""

import asyncio
import base64
import email
import email.policy
import json
import signal
import sys

from aiosmtpd.smtp import SMTP


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Handler:
    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        msg = email.message_from_bytes(data, policy=email.policy.default)
        defects = [type(d).__name__ for d in msg.defects]
        for part in msg.walk():
            defects.extend(type(d).__name__ for d in part.defects)
        emit(
            {
                "event": "message",
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data_b64": base64.b64encode(data).decode(),
                "defects": defects,
            }
        )
        return "250 2.0.0 Message accepted"


def main():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Handler()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, decode_data=False, enable_SMTPUTF8=True),
            host="127.0.0.1",
            port=0,
        )
    )
    emit({"event": "ready", "port": server.sockets[0].getsockname()[1]})
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.run_until_complete(stop)
    server.close()
    loop.run_until_complete(server.wait_closed())


if __name__ == "__main__":
    main()
