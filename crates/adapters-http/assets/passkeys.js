// Portal: passkeys (WebAuthn) on the web pages. Served by Portal at /assets/passkeys.js (the
// page CSP allows scripts from this site only, nothing inline). It drives
// navigator.credentials.create()/.get() against the JSON API: every element with a
// `data-passkey` attribute ("register", "sign-in", "second-factor") names the API addresses
// (`data-options`, `data-finish`), where to go when done (`data-done`), the CSRF token comes from
// the form's hidden `csrf_token` field, and messages come from `data-msg-…` attributes (the
// page's language). Without JavaScript nothing here runs and the password path stays.
(function () {
  "use strict";

  function fromB64u(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64u(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeIds(list) {
    (list || []).forEach(function (c) { c.id = fromB64u(c.id); });
  }

  function creationOptions(pk) {
    pk.challenge = fromB64u(pk.challenge);
    pk.user.id = fromB64u(pk.user.id);
    decodeIds(pk.excludeCredentials);
    return pk;
  }

  function requestOptions(pk) {
    pk.challenge = fromB64u(pk.challenge);
    decodeIds(pk.allowCredentials);
    return pk;
  }

  function registration(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toB64u(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64u(r.attestationObject),
        clientDataJSON: toB64u(r.clientDataJSON),
        transports: typeof r.getTransports === "function" ? r.getTransports() : []
      },
      extensions: {}
    };
  }

  function assertion(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toB64u(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64u(r.authenticatorData),
        clientDataJSON: toB64u(r.clientDataJSON),
        signature: toB64u(r.signature),
        userHandle: r.userHandle ? toB64u(r.userHandle) : null
      },
      extensions: {}
    };
  }

  function post(url, token, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        if (!res.ok) {
          var code = json && json.error && json.error.code ? json.error.code : "failed";
          throw { code: code };
        }
        return json;
      });
    });
  }

  function show(el, text) {
    var box = el.querySelector("[data-passkey-message]");
    if (!box) { return; }
    box.textContent = text;
    box.hidden = false;
  }

  function message(el, code) {
    var key = "msg" + code.split(/[_-]/).map(function (w) {
      return w.charAt(0).toUpperCase() + w.slice(1);
    }).join("");
    return el.dataset[key] || el.dataset.msgFailed || code;
  }

  function failed(el, err) {
    var code = err && err.code ? err.code
      : (err && err.name === "NotAllowedError" ? "cancelled" : "failed");
    if (code === "reauth_required" && el.dataset.reauth) {
      window.location.assign(el.dataset.reauth);
      return;
    }
    show(el, message(el, code));
  }

  function token(el) {
    var field = el.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  function start(el, event) {
    event.preventDefault();
    var kind = el.dataset.passkey;
    var csrf = token(el);
    var done = el.dataset.done;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show(el, message(el, "unsupported"));
      return;
    }
    post(el.dataset.options, csrf).then(function (ceremony) {
      if (kind === "register") {
        return navigator.credentials.create({ publicKey: creationOptions(ceremony.public_key) })
          .then(function (cred) {
            var name = el.querySelector("input[name=name]");
            return post(el.dataset.finish, csrf, {
              challenge_id: ceremony.challenge_id,
              name: name ? name.value.trim() : "",
              credential: registration(cred)
            });
          });
      }
      return navigator.credentials.get({ publicKey: requestOptions(ceremony.public_key) })
        .then(function (cred) {
          var body = { challenge_id: ceremony.challenge_id, credential: assertion(cred) };
          var remember = el.querySelector("input[name=remember_device]");
          if (kind === "second-factor") { body.remember_device = !!(remember && remember.checked); }
          return post(el.dataset.finish, csrf, body);
        });
    }).then(function (answer) {
      if (answer && answer.recovery_code) {
        var box = el.querySelector("[data-passkey-recovery]");
        if (box) {
          box.querySelector("code").textContent = answer.recovery_code;
          box.hidden = false;
          return;
        }
      }
      window.location.assign(done);
    }).catch(function (err) { failed(el, err); });
  }

  document.querySelectorAll("[data-passkey]").forEach(function (el) {
    el.hidden = false;
    el.addEventListener("submit", function (event) { start(el, event); });
  });
})();
