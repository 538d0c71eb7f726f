"""A relying party built on Authlib (and requests), driven step by step by tests/e2e/oidc.rs.

Nothing here knows Portal: it reads the provider's discovery document and uses Authlib's OAuth 2.0
client (`OAuth2Session`: the authorization URL with PKCE S256, the code exchange, refresh,
introspection, revocation) and Authlib's own ID-token validation (`OpenIDMixin.parse_id_token`:
the signature against the JWKS, `iss`, `aud`, `exp`, `iat`, `nonce`, `at_hash`). Back-channel
logout tokens are verified with joserfc, the JOSE library Authlib itself uses, against the same
JWKS.

Each command reads and writes one JSON state file (what a web application would keep in its
session) and prints one JSON object:

    oidc_rp.py begin STATE ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI   -> {"url": ...}
    oidc_rp.py finish STATE CALLBACK_URL        -> claims, userinfo, introspection, refresh
    oidc_rp.py check STATE                      -> introspection and a refresh attempt
    oidc_rp.py logout-token STATE LOGOUT_TOKEN  -> the verified claims
"""

import base64
import json
import sys
import time
from urllib.parse import parse_qs, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.base_client.sync_openid import OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

SCOPE = "openid profile email portal offline_access"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class RelyingParty(OpenIDMixin):
    """Authlib's OpenID Connect mixin, without a web framework: the metadata comes from the state
    file, the JWKS through an `OAuth2Session`."""

    def __init__(self, state):
        self.state = state
        self.client_id = state["client_id"]
        self.server_metadata = state["metadata"]

    def load_server_metadata(self):
        return self.server_metadata

    def _get_session(self):
        return OAuth2Session()

    def session(self, token=None):
        s = self.state
        return OAuth2Session(
            client_id=s["client_id"],
            client_secret=s["client_secret"],
            token_endpoint_auth_method="client_secret_basic",
            scope=SCOPE,
            redirect_uri=s["redirect_uri"],
            code_challenge_method="S256",
            state=s.get("oauth_state"),
            token=token,
        )


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save(path, state):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(state, f)


def introspect(rp, access_token):
    meta = rp.server_metadata
    with rp.session() as session:
        resp = session.introspect_token(
            meta["introspection_endpoint"], token=access_token, token_type_hint="access_token"
        )
    return {"status": resp.status_code, "body": resp.json()}


def refresh(rp, refresh_token):
    """A refresh grant; the new token, or the error code the provider answered."""
    with rp.session() as session:
        try:
            token = session.refresh_token(
                rp.server_metadata["token_endpoint"], refresh_token=refresh_token
            )
        except OAuthError as e:
            return {"error": e.error}
    return {"token": dict(token)}


def begin(path, issuer, client_id, client_secret, redirect_uri):
    metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=60).json()
    state = {
        "issuer": issuer,
        "metadata": metadata,
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uri": redirect_uri,
        "code_verifier": generate_token(48),
        "nonce": generate_token(24),
    }
    rp = RelyingParty(state)
    with rp.session() as session:
        url, oauth_state = session.create_authorization_url(
            metadata["authorization_endpoint"],
            code_verifier=state["code_verifier"],
            nonce=state["nonce"],
        )
    state["oauth_state"] = oauth_state
    save(path, state)
    print(json.dumps({"url": url}))


def finish(path, callback_url):
    state = load(path)
    rp = RelyingParty(state)
    meta = rp.server_metadata
    # RFC 9207: the authorization response names its issuer; a client checks it before using the
    # code (Authlib leaves this to the application).
    params = parse_qs(urlparse(callback_url).query)
    if params.get("iss") != [state["issuer"]]:
        raise SystemExit(f"authorization response from {params.get('iss')}, not {state['issuer']}")
    with rp.session() as session:
        # Checks `state` against the one this client sent, sends the PKCE verifier.
        token = session.fetch_token(
            meta["token_endpoint"],
            authorization_response=callback_url,
            code_verifier=state["code_verifier"],
        )
    token = dict(token)
    claims = rp.parse_id_token(token, nonce=state["nonce"])
    with rp.session(token) as session:
        userinfo = session.get(meta["userinfo_endpoint"]).json()
    first_introspection = introspect(rp, token["access_token"])
    refreshed = refresh(rp, token["refresh_token"])
    out = {
        "id_token_header": json.loads(
            base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "==")
        ),
        "id_claims": dict(claims),
        "userinfo": userinfo,
        "introspection": first_introspection,
        "token_type": token.get("token_type"),
        "scope": token.get("scope"),
        "refresh_token_present": bool(token.get("refresh_token")),
    }
    if "token" in refreshed:
        new = refreshed["token"]
        out["refreshed"] = {
            "rotated": new.get("refresh_token") not in (None, token["refresh_token"]),
            "new_access_token": new["access_token"] != token["access_token"],
            "introspection": introspect(rp, new["access_token"]),
        }
        token = new
    else:
        out["refreshed"] = refreshed
    state["token"] = token
    state["id_claims"] = dict(claims)
    save(path, state)
    print(json.dumps(out))


def check(path):
    state = load(path)
    rp = RelyingParty(state)
    token = state["token"]
    with rp.session(token) as session:
        userinfo = session.get(rp.server_metadata["userinfo_endpoint"])
    print(
        json.dumps(
            {
                "introspection": introspect(rp, token["access_token"]),
                "userinfo_status": userinfo.status_code,
                "refresh": refresh(rp, token["refresh_token"]),
            }
        )
    )


def logout_token(path, logout_jwt):
    """OpenID Connect Back-Channel Logout 1.0, section 2.6: signature with the provider's keys,
    iss, aud, iat, the event, sub or sid, and no nonce."""
    state = load(path)
    rp = RelyingParty(state)
    keys = KeySet.import_key_set(rp.fetch_jwk_set(force=True))
    algs = rp.server_metadata.get("id_token_signing_alg_values_supported", ["RS256"])
    token = jwt.decode(logout_jwt, keys, algorithms=algs)
    registry = jwt.JWTClaimsRegistry(
        leeway=120,
        iss={"essential": True, "value": state["issuer"]},
        aud={"essential": True, "value": state["client_id"]},
        iat={"essential": True},
        jti={"essential": True},
        events={"essential": True},
    )
    registry.validate(token.claims)
    claims = token.claims
    if BACKCHANNEL_EVENT not in claims["events"]:
        raise SystemExit(f"no back-channel logout event: {claims['events']}")
    if "nonce" in claims:
        raise SystemExit("a logout token must not carry a nonce")
    if "sub" not in claims and "sid" not in claims:
        raise SystemExit("a logout token names sub or sid")
    if claims["iat"] > time.time() + 120:
        raise SystemExit("issued in the future")
    print(json.dumps({"header": token.header, "claims": claims}))


def main(argv):
    command, args = argv[1], argv[2:]
    {"begin": begin, "finish": finish, "check": check, "logout-token": logout_token}[command](
        *args
    )


if __name__ == "__main__":
    main(sys.argv)
