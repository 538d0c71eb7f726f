"""A webhook receiver for the tests: verifies every request with the Python `standardwebhooks`
package (an implementation of the Standard Webhooks specification no one here wrote), detects
gaps and disorder from `seq` / `previous_seq`, and answers as told.

    python3 receiver.py LOG FAIL_FIRST REFUSED_TYPE

Prints the port it listens on (127.0.0.1), reads the endpoint's secret (`whsec_…`) as one line
from standard input, then serves until killed. Each request appends one
JSON line to LOG before it is answered: webhook-id, verified, type, customer, seq,
previous_seq, gap (previous_seq is not the last seq this receiver processed for the customer),
status. The first FAIL_FIRST requests and every event of REFUSED_TYPE get 503.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook

log_path, fail_first, refused_type = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
state = {"requests": 0, "last_seq": {}}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {"id": headers.get("webhook-id")}
        try:
            event = webhook.verify(body, headers)
            record["verified"] = True
        except Exception as e:  # noqa: BLE001 - any failure is a refusal
            record.update(verified=False, error=type(e).__name__)
            event = None
        with lock:
            state["requests"] += 1
            if event is None:
                status = 400
            elif state["requests"] <= fail_first or event["type"] == refused_type:
                status = 503
            else:
                status = 204
            if event is not None:
                data = event["data"]
                customer = data["customer_number"]
                last = state["last_seq"].get(customer)
                record.update(
                    type=event["type"],
                    customer=customer,
                    seq=data["seq"],
                    previous_seq=data["previous_seq"],
                    gap=data["previous_seq"] != last,
                )
                if status == 204:
                    state["last_seq"][customer] = max(last or 0, data["seq"])
            record["status"] = status
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
webhook = Webhook(sys.stdin.readline().strip())
server.serve_forever()
