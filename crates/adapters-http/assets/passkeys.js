// Portal: passkeys (WebAuthn) on the web pages. Served by Portal at /assets/passkeys.js (the
// page CSP allows scripts from this site only, nothing inline). It drives
// navigator.credentials.create()/.get(): every form with a `data-passkey` attribute
// ("register", "sign-in", "second-factor", "reauth") names the API address that starts the
// ceremony (`data-options`). Adding a passkey sends the answer to the API (`data-finish`) and
// then goes to `data-done`; the others put the answer into the form's hidden `challenge_id` and
// `credential` fields and submit the form to its page, whose handler signs in (cookies included)
// and redirects. The CSRF token comes from the form's hidden `csrf_token` field, messages from
// `data-msg-…` attributes (the page's language). On the login page, where the browser offers
// conditional mediation, a conditional request starts at once (the passkeys then show among the
// e-mail field's suggestions, `autocomplete="username webauthn"`; the form says
// `data-conditional="pending"` meanwhile); the button aborts it and asks as before. Without
// JavaScript nothing here runs and the password path stays.
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

  // The pending conditional request of the login page (its AbortController), if any.
  var conditional = null;

  function stopConditional() {
    if (conditional) {
      conditional.abort();
      conditional = null;
    }
  }

  // Fills the form with the ceremony's id and the answer and submits it to its page.
  function submitAnswer(el, ceremony, cred) {
    el.querySelector("input[name=challenge_id]").value = ceremony.challenge_id;
    el.querySelector("input[name=credential]").value = JSON.stringify(assertion(cred));
    HTMLFormElement.prototype.submit.call(el);
  }

  function start(el, event) {
    event.preventDefault();
    stopConditional();
    var kind = el.dataset.passkey;
    var csrf = token(el);
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
          }).then(function (answer) {
            if (answer && answer.recovery_code) {
              var box = el.querySelector("[data-passkey-recovery]");
              if (box) {
                box.querySelector("code").textContent = answer.recovery_code;
                box.hidden = false;
                return;
              }
            }
            window.location.assign(el.dataset.done);
          });
      }
      return navigator.credentials.get({ publicKey: requestOptions(ceremony.public_key) })
        .then(function (cred) { submitAnswer(el, ceremony, cred); });
    }).catch(function (err) { failed(el, err); });
  }

  // Conditional mediation on the login page: the browser offers the passkeys in the e-mail
  // field's suggestions; choosing one signs in. Where the browser does not offer it, or the
  // request fails, nothing is shown: the button stays.
  function startConditional(el) {
    if (!window.PublicKeyCredential || !navigator.credentials
        || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function"
        || typeof AbortController !== "function") {
      return;
    }
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) { return undefined; }
      return post(el.dataset.options, token(el)).then(function (ceremony) {
        var controller = new AbortController();
        conditional = controller;
        var request = navigator.credentials.get({
          publicKey: requestOptions(ceremony.public_key),
          mediation: "conditional",
          signal: controller.signal
        });
        el.dataset.conditional = "pending";
        return request.then(function (cred) {
          if (conditional !== controller) { return; }
          conditional = null;
          el.dataset.conditional = "answered";
          submitAnswer(el, ceremony, cred);
        });
      });
    }).catch(function () {
      if (el.dataset.conditional === "pending") { el.dataset.conditional = "ended"; }
    });
  }

  document.querySelectorAll("[data-passkey]").forEach(function (el) {
    el.hidden = false;
    el.addEventListener("submit", function (event) { start(el, event); });
    if (el.dataset.passkey === "sign-in") { startConditional(el); }
  });
})();
