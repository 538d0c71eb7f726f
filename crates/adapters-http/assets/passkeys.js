// Portal's passkey script (WebAuthn): served by Portal from its own origin, so the pages' policy
// (`default-src 'self'`, no inline script) allows it. It only talks to Portal's JSON API with the
// page's CSRF token; the server checks everything. Without JavaScript or WebAuthn the passkey
// buttons stay hidden and the password path works as before.
(function () {
  "use strict";

  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function fromB64u(s) {
    var b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  }

  function toB64u(buf) {
    var bytes = new Uint8Array(buf);
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrf() {
    var f = document.querySelector('input[name="csrf_token"]');
    return f ? f.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw j;
        return j;
      });
    });
  }

  function creationOptions(pk) {
    pk.challenge = fromB64u(pk.challenge);
    pk.user.id = fromB64u(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    return pk;
  }

  function requestOptions(pk) {
    pk.challenge = fromB64u(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    return pk;
  }

  function credentialJson(c) {
    var r = c.response;
    var out = {
      id: c.id,
      rawId: toB64u(c.rawId),
      type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64u(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64u(r.attestationObject);
    } else {
      out.response.authenticatorData = toB64u(r.authenticatorData);
      out.response.signature = toB64u(r.signature);
      out.response.userHandle = r.userHandle ? toB64u(r.userHandle) : null;
    }
    return out;
  }

  function show(box, text) {
    var p = box.querySelector("[data-passkey-message]");
    if (p) {
      p.textContent = text;
      p.hidden = false;
    }
  }

  function failure(box, e) {
    if (e && e.error && e.error.code === "reauth_required" && box.dataset.reauth) {
      window.location.assign(box.dataset.reauth);
      return;
    }
    var msg = e && e.error && e.error.message;
    show(box, msg || box.dataset.failed || "Passkey failed");
  }

  // "Mit Passkey anmelden" (and conditional UI in the e-mail field where the browser has it).
  function signIn(box) {
    var api = box.dataset.api;
    var pending = null;
    function run(mediation) {
      if (pending) pending.abort();
      var ctl = new AbortController();
      pending = ctl;
      return post(api + "/auth/passkey/options").then(function (start) {
        var opts = { publicKey: requestOptions(start.public_key), signal: ctl.signal };
        if (mediation) opts.mediation = mediation;
        return navigator.credentials.get(opts).then(function (cred) {
          return post(api + "/auth/passkey", {
            challenge_id: start.challenge_id,
            credential: credentialJson(cred),
          });
        });
      }).then(function () {
        window.location.assign(box.dataset.next);
      });
    }
    var button = box.querySelector("[data-passkey-signin]");
    button.hidden = false;
    button.addEventListener("click", function () {
      run(null).catch(function (e) {
        if (!(e && e.name === "AbortError")) failure(box, e);
      });
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) run("conditional").catch(function () {});
      });
    }
  }

  // The passkey as the second step after the password.
  function secondFactor(box) {
    var api = box.dataset.api;
    var button = box.querySelector("[data-passkey-mfa]");
    button.hidden = false;
    button.addEventListener("click", function () {
      var remember = document.querySelector('input[name="remember_device"]');
      post(api + "/auth/login/mfa/passkey/options").then(function (start) {
        return navigator.credentials.get({ publicKey: requestOptions(start.public_key) })
          .then(function (cred) {
            return post(api + "/auth/login/mfa/passkey", {
              challenge_id: start.challenge_id,
              credential: credentialJson(cred),
              remember_device: !!(remember && remember.checked),
            });
          });
      }).then(function () {
        window.location.assign(box.dataset.next);
      }).catch(function (e) { failure(box, e); });
    });
  }

  // "Passkey hinzufügen" on the security page.
  function register(box) {
    var api = box.dataset.api;
    var form = box.querySelector("form[data-passkey-add]");
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var name = form.querySelector('input[name="name"]').value;
      post(api + "/me/passkeys/options").then(function (start) {
        return navigator.credentials.create({ publicKey: creationOptions(start.public_key) })
          .then(function (cred) {
            return post(api + "/me/passkeys", {
              challenge_id: start.challenge_id,
              name: name,
              credential: credentialJson(cred),
            });
          });
      }).then(function (done) {
        if (done.recovery_code) {
          // Shown once, here: the recovery code the first factor brought.
          var shown = box.querySelector("[data-passkey-recovery]");
          shown.querySelector("code").textContent = done.recovery_code;
          shown.hidden = false;
          form.hidden = true;
        } else {
          window.location.assign(box.dataset.next);
        }
      }).catch(function (e) { failure(box, e); });
    });
  }

  document.querySelectorAll("[data-passkey]").forEach(function (box) {
    var kind = box.dataset.passkey;
    if (kind === "sign-in") signIn(box);
    else if (kind === "second-factor") secondFactor(box);
    else if (kind === "register") register(box);
    var hint = box.querySelector("[data-passkey-nojs]");
    if (hint) hint.hidden = true;
  });
})();
