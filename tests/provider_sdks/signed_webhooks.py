"""Webhooks signed by the providers' official SDKs are accepted (scripts/provider-sdks.sh).

Starts callverify with a Twilio, a Telnyx and a Plivo account whose Calls APIs are a stub served
here (the Telnyx stub answers a create as Telnyx documents it, `{from, to, status}`: no call id,
so the first signed callback binds it). For each account it starts a verification through the
API, posts a wrong-signature keypress (403, nothing changes), then the verification's status and
keypress webhooks signed with the SDK's own helper, and requires `ringing` then `approved` through
the API. Twilio runs twice: signed with the auth token, and with a SharedKey
(`X-Twilio-Webhooks-Signature-Settings`). Exits non-zero on the first failure.
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nacl.signing
from plivo.utils.signature_v3 import (
    construct_post_url,
    get_signature_v3,
    validate_v3_signature,
)
from telnyx.lib.webhook_verification import verify_webhook_signature
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator

TWILIO_ACCOUNT = "AC" + "0" * 32
TWILIO_TOKEN = secrets.token_hex(16)
SHARED_KEY_ID = "webhooks_sharedkey_sdk"
SHARED_KEY_SECRET = secrets.token_hex(16)
PLIVO_AUTH_ID = "MA" + "A" * 18
PLIVO_TOKEN = secrets.token_hex(16)
TELNYX_KEY = nacl.signing.SigningKey.generate()
TELNYX_PUBLIC = base64.b64encode(bytes(TELNYX_KEY.verify_key)).decode()


class CallsApi(BaseHTTPRequestHandler):
    """Each provider's create-call answer, in its documented shape."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if "/texml/" in self.path:
            status, body = 200, {"from": "+15005550006", "to": "+14255550100", "status": "queued"}
        elif "/v1/Account/" in self.path:
            uuid = "5a1b2c3d-0000-4000-8000-" + secrets.token_hex(6)
            status, body = 201, {"api_id": "x", "message": "call fired", "request_uuid": uuid}
        else:
            status, body = 201, {"sid": "CA" + secrets.token_hex(16), "status": "queued"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        CallsApi.created.append(body)

    def log_message(self, *args):
        pass


CallsApi.created = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(port, stub, redis_url, prefix, portal_keys):
    # One tenant per account (its calls go to that account), each with its own portal key.
    tenants = "".join(
        f'[[tenants]]\nid = "{t}"\nportal_keys_sha256 = ["{hashlib.sha256(k.encode()).hexdigest()}"]\n'
        f'providers = ["{t}"]\n'
        for t, k in portal_keys.items()
    )
    return f"""
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
[redis]
url = "{redis_url}"
prefix = "{prefix}"
[provider]
calls_per_second = 0
[[providers]]
name = "tw"
kind = "twilio"
account_sid = "{TWILIO_ACCOUNT}"
auth_token = "{TWILIO_TOKEN}"
webhook_shared_keys = [{{ id = "{SHARED_KEY_ID}", secret = "{SHARED_KEY_SECRET}" }}]
api_base = "{stub}"
from = "+15005550006"
[[providers]]
name = "tx"
kind = "telnyx"
api_key = "KEYsdk"
account_sid = "acc"
application_sid = "app"
public_key = "{TELNYX_PUBLIC}"
api_base = "{stub}"
from = "+15005550006"
[[providers]]
name = "pl"
kind = "plivo"
auth_id = "{PLIVO_AUTH_ID}"
auth_token = "{PLIVO_TOKEN}"
api_base = "{stub}"
from = "+15005550006"
{tenants}"""


class Api:
    def __init__(self, base, keys):
        self.base, self.keys = base, keys

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        tenant = path.split("/")[3]  # /v1/tenants/{tenant}/…
        request.add_header("authorization", f"Bearer {self.keys[tenant]}")
        if data is not None:
            request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def verification(self, tenant, vid):
        status, body = self.call("GET", f"/v1/tenants/{tenant}/verifications/{vid}")
        assert status == 200, (status, body)
        return body


def post_form(url, params, headers):
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("content-type", "application/x-www-form-urlencoded")
    for k, v in headers.items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


# --- each provider's signature, made by its SDK ---------------------------------------------


def twilio_headers(url, params, wrong=False):
    token = "not-the-token" if wrong else TWILIO_TOKEN
    validator = RequestValidator(token)
    signature = validator.compute_signature(url, params)
    assert wrong or validator.validate(url, params, signature)
    return {"X-Twilio-Signature": signature}


def twilio_shared_key_headers(url, params, wrong=False):
    validator = RequestValidator(SHARED_KEY_SECRET)
    signature = validator.compute_signature(url, params, "HMAC_SHA256")
    assert validator.validate(url, params, signature, "HMAC_SHA256")
    if wrong:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params, "HMAC_SHA256")
    settings = f"key={SHARED_KEY_ID},algorithm=HMAC_SHA256"
    return {"X-Twilio-Signature": signature, SIGNATURE_SETTINGS_HEADER: settings}


def plivo_headers(url, params, wrong=False):
    nonce = str(secrets.randbelow(10**20))
    token = "not-the-token" if wrong else PLIVO_TOKEN
    # The SDK's own V3 construction: base URL (query sorted, then the sorted parameters), nonce.
    signature = get_signature_v3(token, construct_post_url(url, params), nonce).decode()
    assert wrong or validate_v3_signature("POST", url, nonce, PLIVO_TOKEN, signature, params)
    return {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce}


def telnyx_headers(url, params, wrong=False):
    body = urllib.parse.urlencode(params)
    timestamp = str(int(time.time()))
    key = nacl.signing.SigningKey.generate() if wrong else TELNYX_KEY
    signed = key.sign(f"{timestamp}|{body}".encode()).signature
    headers = {
        "telnyx-signature-ed25519": base64.b64encode(signed).decode(),
        "telnyx-timestamp": timestamp,
    }
    if not wrong:
        # Telnyx's SDK verifies it with the account's public key, as callverify must.
        verify_webhook_signature(body, headers, TELNYX_PUBLIC)
    return headers


# --- the checks -------------------------------------------------------------------------------


def run(api, public, case):
    name, tenant, account, sign, number = case
    status, v = api.call(
        "POST",
        f"/v1/tenants/{tenant}/users/sdk-{name}/verifications",
        {"purpose": "registration", "phone_number": number},
    )
    assert status == 202, (name, status, v)
    vid = v["id"]
    created = CallsApi.created[-1]
    if account == "tw":
        ids = {"CallSid": created["sid"]}
    elif account == "pl":
        ids = {"CallUUID": created["request_uuid"], "RequestUUID": created["request_uuid"]}
    else:
        ids = {"CallSid": "v3:sdk-" + secrets.token_hex(8)}  # Telnyx named no call: we pick it
    base = f"{public}/telephony/{account}/{vid}"
    gather = {**ids, "CallStatus": "in-progress", "Digits": "#"}

    # A wrong signature: 403 and nothing changes.
    before = api.verification(tenant, vid)
    url = f"{base}/gather?step=prompt"
    code = post_form(url, gather, sign(url, gather, wrong=True))
    after = api.verification(tenant, vid)
    assert code == 403, (name, "wrong signature answered", code)
    assert (after["status"], after["updated_at"]) == (before["status"], before["updated_at"]), name

    # Signed by the SDK: the status callback, then the keypress.
    ringing = {**ids, "CallStatus": "ringing"}
    url = f"{base}/status"
    code = post_form(url, ringing, sign(url, ringing))
    assert 200 <= code < 300, (name, "status callback answered", code)
    assert api.verification(tenant, vid)["status"] == "ringing", name
    url = f"{base}/gather?step=prompt"
    code = post_form(url, gather, sign(url, gather))
    assert code == 200, (name, "keypress answered", code)
    v = api.verification(tenant, vid)
    assert v["status"] == "approved", (name, v)
    print(f"provider-sdks: {name}: wrong signature 403, SDK-signed status and # approved")


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--bin", required=True)
    args.add_argument("--work", required=True)
    args.add_argument("--redis", required=True)
    args.add_argument("--prefix", required=True)
    args = args.parse_args()

    stub = ThreadingHTTPServer(("127.0.0.1", 0), CallsApi)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    port = free_port()
    portal_keys = {t: f"portal-{t}-" + secrets.token_hex(16) for t in ("tw", "tx", "pl")}
    path = os.path.join(args.work, "callverify.toml")
    with open(path, "w") as f:
        f.write(config(port, f"http://127.0.0.1:{stub.server_address[1]}", args.redis, args.prefix, portal_keys))
    log = open(os.path.join(args.work, "server.log"), "w")
    env = {**os.environ, "CALLVERIFY_CONFIG": path, "RUST_LOG": "warn"}
    server = subprocess.Popen([args.bin, "serve"], env=env, stderr=log)
    public = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(public + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("provider-sdks: callverify did not become ready")
        api = Api(public, portal_keys)
        for case in (
            ("twilio", "tw", "tw", twilio_headers, "+14255550100"),
            ("twilio-sharedkey", "tw", "tw", twilio_shared_key_headers, "+14255550101"),
            ("telnyx", "tx", "tx", telnyx_headers, "+14255550102"),
            ("plivo", "pl", "pl", plivo_headers, "+14255550103"),
        ):
            run(api, public, case)
    except AssertionError as e:
        log.flush()
        print(f"provider-sdks: FAILED {e!r}", file=sys.stderr)
        print(open(log.name).read()[-4000:], file=sys.stderr)
        sys.exit(1)
    finally:
        server.terminate()
        server.wait(timeout=20)
        stub.shutdown()


if __name__ == "__main__":
    main()
