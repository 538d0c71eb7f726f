//! `/api/v1/me*` and `/api/v1/me/mfa*`.

use crate::support::*;
use chrono::TimeDelta;
use serde_json::json;

#[tokio::test]
async fn me_shows_the_user_and_updates_name_and_language() {
    let app = TestApp::new();
    app.registered("me@example.com").await;
    let c = app.login("me@example.com").await;
    let r = c.get("/api/v1/me").await;
    let body = r.ok(200);
    assert_eq!(body["email"], "me@example.com");
    assert_eq!(body["role"], "employee");
    assert_eq!(body["mfa"]["enabled"], false);
    assert!(body["customer"].is_null());
    let r = c
        .put(
            "/api/v1/me",
            json!({"first_name": "Maria", "last_name": "Muster", "language": "en"}),
        )
        .await;
    assert_eq!(r.ok(200)["first_name"], "Maria");
    assert_eq!(r.body["language"], "en");
    c.put(
        "/api/v1/me",
        json!({"first_name": "", "last_name": "Muster", "language": "en"}),
    )
    .await
    .assert(400, "invalid_request");
    c.put(
        "/api/v1/me",
        json!({"first_name": "A", "last_name": "B", "language": "en", "role": "operator"}),
    )
    .await
    .assert(400, "unknown_field");
    app.client()
        .get("/api/v1/me")
        .await
        .assert(401, "unauthenticated");
}

#[tokio::test]
async fn names_with_direction_controls_or_invisible_characters_are_refused_and_zwnj_is_kept() {
    let app = TestApp::new();
    app.registered("bidi@example.com").await;
    let c = app.login("bidi@example.com").await;
    let before = c.get("/api/v1/me").await.ok(200).clone();
    for bad in ["A\u{202E}B", "\u{200B}", "Anna\u{2066}", "\u{FEFF}Anna"] {
        let r = c
            .put(
                "/api/v1/me",
                json!({"first_name": bad, "last_name": "Muster", "language": "en"}),
            )
            .await;
        r.assert(400, "invalid_request");
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("first_name") && message.contains("invisible or text-direction"),
            "{message}"
        );
    }
    let after = c.get("/api/v1/me").await.ok(200).clone();
    assert_eq!(after, before, "nothing changed");
    // The Persian name Mahlagha is written with a zero-width non-joiner: it stays as typed.
    let mahlagha = "مه\u{200C}لقا";
    let r = c
        .put(
            "/api/v1/me",
            json!({"first_name": mahlagha, "last_name": "Muster", "language": "en"}),
        )
        .await;
    assert_eq!(r.ok(200)["first_name"], mahlagha);
}

#[tokio::test]
async fn changing_the_password_rotates_this_session_and_ends_the_others() {
    let app = TestApp::new();
    app.registered("pw@example.com").await;
    let c = app.login("pw@example.com").await;
    let other = app.login("pw@example.com").await;
    let before = c.cookie("portal-session").unwrap();
    c.put(
        "/api/v1/me/password",
        json!({"current_password": "falsch falsch", "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD}),
    )
    .await
    .assert(400, "wrong_password");
    c.put(
        "/api/v1/me/password",
        json!({"current_password": PASSWORD, "password": "kurz", "password_confirmation": "kurz"}),
    )
    .await
    .assert(422, "password_policy");
    let r = c
        .put(
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD}),
        )
        .await;
    assert!(r.ok(200)["csrf_token"].is_string());
    assert_ne!(c.cookie("portal-session").unwrap(), before);
    c.get("/api/v1/me").await.ok(200);
    other.get("/api/v1/me").await.assert(401, "unauthenticated");
}

#[tokio::test]
async fn changing_the_password_long_after_the_login_needs_a_reauthentication_first() {
    let app = TestApp::new();
    app.registered("late@example.com").await;
    let c = app.login("late@example.com").await;
    app.advance(TimeDelta::minutes(15) + TimeDelta::seconds(1));
    let change = json!({"current_password": PASSWORD, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD});
    let before = c.cookie("portal-session").unwrap();
    c.put("/api/v1/me/password", change.clone())
        .await
        .assert(403, "reauth_required");
    assert_eq!(c.cookie("portal-session").unwrap(), before, "no rotation");
    // Nothing changed: the old password still logs in.
    app.login("late@example.com").await;
    c.post("/api/v1/auth/reauthenticate", json!({"password": PASSWORD}))
        .await
        .ok(200);
    c.put("/api/v1/me/password", change).await.ok(200);
    c.get("/api/v1/me").await.ok(200);
}

#[tokio::test]
async fn changing_the_address_needs_the_new_addresses_code() {
    let app = TestApp::new();
    app.registered("old@example.com").await;
    app.registered("taken@example.com").await;
    let c = app.login("old@example.com").await;
    c.post("/api/v1/me/email", json!({"email": "old@example.com"}))
        .await
        .assert(409, "same_email");
    // An address with an account answers like a free one (its owner gets a notice instead).
    let taken = c
        .post("/api/v1/me/email", json!({"email": "taken@example.com"}))
        .await;
    let taken_body = taken.ok(202).clone();
    assert_eq!(
        app.mails_to("taken@example.com")
            .last()
            .map(|m| m.intent.key()),
        Some("address_in_use_notice")
    );
    let r = c
        .post("/api/v1/me/email", json!({"email": "new@example.com"}))
        .await;
    let ticket = r.ok(202)["ticket"].as_str().unwrap().to_owned();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&r.body), keys(&taken_body), "the same answer");
    assert_eq!(
        r.body["code_expires_at"], taken_body["code_expires_at"],
        "the same answer"
    );
    let code = app.secret_for("new@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    c.post(
        "/api/v1/me/email/confirm",
        json!({"ticket": ticket, "code": wrong}),
    )
    .await
    .assert(400, "invalid_code");
    c.post(
        "/api/v1/me/email/confirm",
        json!({"ticket": "x", "code": code}),
    )
    .await
    .assert(400, "invalid_ticket");
    c.post(
        "/api/v1/me/email/confirm",
        json!({"ticket": ticket, "code": "1"}),
    )
    .await
    .assert(400, "malformed_code");
    let r = c
        .post(
            "/api/v1/me/email/confirm",
            json!({"ticket": ticket, "code": code}),
        )
        .await;
    assert_eq!(r.ok(200)["email"], "new@example.com");
    app.advance(TimeDelta::minutes(20));
    c.post("/api/v1/me/email", json!({"email": "third@example.com"}))
        .await
        .assert(403, "reauth_required");
}

#[tokio::test]
async fn onboarding_chooses_an_affiliation_and_links_by_number_or_legacy_account() {
    let app = TestApp::new();
    app.customer("100000001").await;
    app.customer("100000002").await;
    app.registered("on@example.com").await;
    let c = app.login("on@example.com").await;
    c.post(
        "/api/v1/me/link/customer",
        json!({"customer_number": "100000001"}),
    )
    .await
    .assert(409, "affiliation_required");
    c.put(
        "/api/v1/me/affiliation",
        json!({"affiliation": "mars-colony"}),
    )
    .await
    .assert(422, "unknown_affiliation");
    c.put(
        "/api/v1/me/affiliation",
        json!({"affiliation": "de-business"}),
    )
    .await
    .ok(204);
    c.post("/api/v1/me/link/customer", json!({"customer_number": "12"}))
        .await
        .assert(400, "invalid_customer_number");
    c.post(
        "/api/v1/me/link/customer",
        json!({"customer_number": "999999999"}),
    )
    .await
    .assert(404, "customer_not_found");
    let r = c
        .post(
            "/api/v1/me/link/customer",
            json!({"customer_number": "D100000001"}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "active");
    c.post(
        "/api/v1/me/link/customer",
        json!({"customer_number": "100000002"}),
    )
    .await
    .assert(409, "already_linked");
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.ok(200)["customer"]["number"], "100000001");

    // Legacy account.
    app.legacy.add("alt", "altes passwort", number("100000002"));
    app.registered("leg@example.com").await;
    let l = app.login("leg@example.com").await;
    l.put(
        "/api/v1/me/affiliation",
        json!({"affiliation": "de-business"}),
    )
    .await
    .ok(204);
    l.post(
        "/api/v1/me/link/legacy",
        json!({"username": "alt", "password": "falsch"}),
    )
    .await
    .assert(400, "invalid_legacy_credentials");
    let r = l
        .post(
            "/api/v1/me/link/legacy",
            json!({"username": "alt", "password": "altes passwort"}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "active");
    app.registered("leg2@example.com").await;
    let l2 = app.login("leg2@example.com").await;
    l2.put(
        "/api/v1/me/affiliation",
        json!({"affiliation": "de-business"}),
    )
    .await
    .ok(204);
    // The customer has no admin: active; but the old account can be linked once only.
    l2.post(
        "/api/v1/me/link/legacy",
        json!({"username": "alt", "password": "altes passwort"}),
    )
    .await
    .assert(409, "legacy_already_linked");
}

#[tokio::test]
async fn admin_requests_and_messages_to_the_administrators() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    app.registered("lonely@example.com").await;
    let lonely = app.login("lonely@example.com").await;
    lonely
        .post_empty("/api/v1/me/admin-request")
        .await
        .assert(409, "not_eligible");
    lonely
        .post("/api/v1/me/contact-admin", json!({"message": "Hallo"}))
        .await
        .assert(409, "not_linked");
    t.admin_a
        .post_empty("/api/v1/me/admin-request")
        .await
        .assert(409, "already_admin");
    t.employee_a
        .post_empty("/api/v1/me/admin-request")
        .await
        .ok(201);
    t.employee_a
        .post_empty("/api/v1/me/admin-request")
        .await
        .assert(409, "already_requested");
    let r = t
        .employee_a
        .post(
            "/api/v1/me/contact-admin",
            json!({"message": "Bitte Rechte für Belege"}),
        )
        .await;
    assert_eq!(r.ok(202)["recipients"], 1);
    t.employee_a
        .post("/api/v1/me/contact-admin", json!({"message": "   "}))
        .await
        .assert(400, "invalid_request");
    t.employee_a
        .post(
            "/api/v1/me/contact-admin",
            json!({"message": "x".repeat(2001)}),
        )
        .await
        .assert(400, "invalid_request");
}

#[tokio::test]
async fn sessions_are_listed_and_ended() {
    let app = TestApp::new();
    app.registered("ses@example.com").await;
    let a = app.login("ses@example.com").await;
    let b = app.login("ses@example.com").await;
    let c = app.login("ses@example.com").await;
    let r = a.get("/api/v1/me/sessions").await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    // Three logins and the session that confirming the registration started.
    assert_eq!(items.len(), 4);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    // End b's session from a.
    let b_id = b.get("/api/v1/me/sessions").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.delete(&format!("/api/v1/me/sessions/{b_id}"))
        .await
        .ok(204);
    b.get("/api/v1/me").await.assert(401, "unauthenticated");
    c.get("/api/v1/me").await.ok(200);
    a.delete(&format!("/api/v1/me/sessions/{b_id}"))
        .await
        .assert(404, "not_found");
    // Another user's session is not found either.
    app.registered("other@example.com").await;
    let o = app.login("other@example.com").await;
    let a_id = a.get("/api/v1/me/sessions").await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    o.delete(&format!("/api/v1/me/sessions/{a_id}"))
        .await
        .assert(404, "not_found");
    // Everywhere else.
    a.delete("/api/v1/me/sessions").await.ok(204);
    c.get("/api/v1/me").await.assert(401, "unauthenticated");
    a.get("/api/v1/me").await.ok(200);
    // Ending the current one logs out.
    let mine = a.get("/api/v1/me/sessions").await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = a.delete(&format!("/api/v1/me/sessions/{mine}")).await;
    r.ok(204);
    assert!(
        r.cookie("__Host-portal-session")
            .unwrap()
            .contains("Max-Age=0")
    );
    a.get("/api/v1/me").await.assert(401, "unauthenticated");
}

#[tokio::test]
async fn totp_setup_confirm_regenerate_recovery_channel_and_remove() {
    let app = TestApp::new();
    app.registered("f@example.com").await;
    let c = app.login("f@example.com").await;
    c.post("/api/v1/me/mfa/totp/confirm", json!({"code": "123456"}))
        .await
        .assert(409, "no_setup_in_progress");
    c.delete_json(
        "/api/v1/me/mfa",
        json!({"method": "totp", "code": "123456"}),
    )
    .await
    .assert(409, "mfa_not_enabled");
    let setup = c.post_empty("/api/v1/me/mfa/totp").await;
    let secret = setup.ok(201)["secret"].as_str().unwrap().to_owned();
    let code = totp_code(&app, &secret);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    c.post("/api/v1/me/mfa/totp/confirm", json!({"code": wrong}))
        .await
        .assert(400, "invalid_code");
    c.post("/api/v1/me/mfa/totp/confirm", json!({"code": "12x"}))
        .await
        .assert(400, "malformed_code");
    let r = c
        .post("/api/v1/me/mfa/totp/confirm", json!({"code": code}))
        .await;
    assert!(r.ok(200)["recovery_code"].is_string());
    c.post_empty("/api/v1/me/mfa/totp")
        .await
        .assert(409, "mfa_already_enabled");
    let me = c.get("/api/v1/me").await;
    assert_eq!(
        me.ok(200)["mfa"]["methods"],
        json!(["totp", "recovery_code"])
    );

    // Regenerate the recovery code with a current factor (a used code is refused, and says so).
    c.post(
        "/api/v1/me/mfa/recovery-code",
        json!({"method": "totp", "code": code}),
    )
    .await
    .assert(400, "code_already_used");
    app.advance(TimeDelta::seconds(31));
    let code = totp_code(&app, &secret);
    let r = c
        .post(
            "/api/v1/me/mfa/recovery-code",
            json!({"method": "totp", "code": code}),
        )
        .await;
    assert!(r.ok(200)["recovery_code"].is_string());

    // Recovery channel.
    app.advance(TimeDelta::seconds(31));
    let code = totp_code(&app, &secret);
    c.put(
        "/api/v1/me/mfa/recovery-channel",
        json!({"kind": "email", "to": "backup@example.com", "factor": {"method": "totp", "code": code}}),
    )
    .await
    .ok(202);
    // Not used before its code is confirmed.
    let me = c.get("/api/v1/me").await;
    let me = me.ok(200);
    assert!(me["mfa"]["recovery_channel"].is_null());
    assert_eq!(
        me["mfa"]["pending_recovery_channel"]["to"],
        "backup@example.com"
    );
    c.post(
        "/api/v1/me/mfa/recovery-channel/confirm",
        json!({"code": "000000"}),
    )
    .await
    .assert(400, "invalid_code");
    c.post_empty("/api/v1/me/mfa/recovery-channel/resend")
        .await
        .ok(202);
    let mailed = app.secret_for("backup@example.com");
    c.post(
        "/api/v1/me/mfa/recovery-channel/confirm",
        json!({"code": mailed}),
    )
    .await
    .ok(204);
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.ok(200)["mfa"]["recovery_channel"]["kind"], "email");
    assert!(me.body["mfa"]["pending_recovery_channel"].is_null());
    c.post(
        "/api/v1/me/mfa/recovery-channel/confirm",
        json!({"code": mailed}),
    )
    .await
    .assert(409, "no_setup_in_progress");
    c.put(
        "/api/v1/me/mfa/recovery-channel",
        json!({"kind": "phone", "to": "not a number", "factor": {"method": "totp", "code": "123456"}}),
    )
    .await
    .assert(400, "invalid_request");
    c.put(
        "/api/v1/me/mfa/recovery-channel",
        json!({"kind": "fax", "to": "1", "factor": {"method": "totp", "code": "123456"}}),
    )
    .await
    .assert(400, "invalid_request");

    // Step-up is needed after a while.
    app.advance(TimeDelta::minutes(20));
    let code = totp_code(&app, &secret);
    c.delete_json("/api/v1/me/mfa", json!({"method": "totp", "code": code}))
        .await
        .assert(403, "reauth_required");
    c.post(
        "/api/v1/auth/reauthenticate",
        json!({"password": PASSWORD, "factor": {"method": "totp", "code": code}}),
    )
    .await
    .ok(200);
    app.advance(TimeDelta::seconds(31));
    let code = totp_code(&app, &secret);
    c.delete_json("/api/v1/me/mfa", json!({"method": "totp", "code": code}))
        .await
        .ok(204);
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.ok(200)["mfa"]["enabled"], false);
}

#[tokio::test]
async fn phone_factors_and_presence_codes() {
    let app = TestApp::new();
    app.registered("tel@example.com").await;
    let c = app.login("tel@example.com").await;
    c.post_empty("/api/v1/me/mfa/presence-code")
        .await
        .assert(400, "no_such_factor");
    c.post(
        "/api/v1/me/mfa/phone",
        json!({"phone": "069 123", "channel": "sms"}),
    )
    .await
    .assert(400, "invalid_request");
    c.post(
        "/api/v1/me/mfa/phone",
        json!({"phone": "+49 170 1234567", "channel": "pigeon"}),
    )
    .await
    .assert(400, "invalid_request");
    c.post("/api/v1/me/mfa/phone/confirm", json!({"code": "123456"}))
        .await
        .assert(409, "no_setup_in_progress");
    c.post(
        "/api/v1/me/mfa/phone",
        json!({"phone": "+49 170 1234567", "channel": "voice"}),
    )
    .await
    .ok(202);
    let code = app.sms.last_code_to("+491701234567").unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    c.post("/api/v1/me/mfa/phone/confirm", json!({"code": wrong}))
        .await
        .assert(400, "invalid_code");
    let r = c
        .post("/api/v1/me/mfa/phone/confirm", json!({"code": code}))
        .await;
    assert!(r.ok(200)["recovery_code"].is_string());
    assert_eq!(
        c.get("/api/v1/me").await.body["mfa"]["methods"],
        json!(["voice", "recovery_code"])
    );
    // The recovery phone must differ from the MFA phone.
    c.post_empty("/api/v1/me/mfa/presence-code").await.ok(202);
    let code = app.sms.last_code_to("+491701234567").unwrap();
    c.put(
        "/api/v1/me/mfa/recovery-channel",
        json!({"kind": "phone", "to": "+49 170 1234567", "factor": {"method": "phone_code", "code": code}}),
    )
    .await
    .assert(422, "same_phone");
}

#[tokio::test]
async fn a_server_without_phone_gateway_or_mfa_key_says_so() {
    let app = TestApp::with(http_config(), |c| c.mfa_key = None);
    app.registered("nokey@example.com").await;
    let c = app.login("nokey@example.com").await;
    c.post_empty("/api/v1/me/mfa/totp")
        .await
        .assert(422, "factor_unavailable");
}

/// The id of the session of `c`'s request, from its own list.
async fn current_session_id(c: &Client) -> String {
    let r = c.get("/api/v1/me/sessions").await;
    r.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn one_session_or_remembered_device_is_shown_by_id_to_its_user_only() {
    let app = TestApp::new();
    app.registered("one@example.com").await;
    let a = app.login("one@example.com").await;
    let b = app.login("one@example.com").await;
    let a_id = current_session_id(&a).await;
    let b_id = current_session_id(&b).await;

    let r = a.get(&format!("/api/v1/me/sessions/{a_id}")).await;
    let body = r.ok(200);
    assert_eq!(body["id"], a_id.as_str());
    assert_eq!(body["kind"], "session");
    assert_eq!(body["current"], true);
    assert!(body["expires_at"].is_string());
    let r = a.get(&format!("/api/v1/me/sessions/{b_id}")).await;
    assert_eq!(r.ok(200)["id"], b_id.as_str());
    assert_eq!(r.body["current"], false);
    a.delete(&format!("/api/v1/me/sessions/{b_id}"))
        .await
        .ok(204);
    let ended = a.get(&format!("/api/v1/me/sessions/{b_id}")).await;
    ended.assert(404, "not_found");

    // A remembered device of the same user.
    let setup = a.post_empty("/api/v1/me/mfa/totp").await;
    let secret = setup.ok(201)["secret"].as_str().unwrap().to_owned();
    a.post(
        "/api/v1/me/mfa/totp/confirm",
        json!({"code": totp_code(&app, &secret)}),
    )
    .await
    .ok(200);
    app.advance(TimeDelta::seconds(31));
    let d = app.client();
    let r = d
        .post(
            "/api/v1/auth/login",
            json!({"email": "one@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "mfa_required");
    d.post(
        "/api/v1/auth/login/mfa",
        json!({"method": "totp", "code": totp_code(&app, &secret), "remember_device": true}),
    )
    .await
    .ok(200);
    let list = a.get("/api/v1/me/sessions").await;
    let device_id = list.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "remembered_device")
        .expect("the remembered device is listed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = a.get(&format!("/api/v1/me/sessions/{device_id}")).await;
    assert_eq!(r.ok(200)["kind"], "remembered_device");
    assert_eq!(r.body["current"], false);

    // Another user's session, an ended one and an unknown id answer alike.
    app.registered("other@example.com").await;
    let o = app.login("other@example.com").await;
    let foreign = o.get(&format!("/api/v1/me/sessions/{a_id}")).await;
    foreign.assert(404, "not_found");
    o.get(&format!("/api/v1/me/sessions/{device_id}"))
        .await
        .assert(404, "not_found");
    let unknown = a
        .get("/api/v1/me/sessions/00000000-0000-4000-8000-000000000000")
        .await;
    unknown.assert(404, "not_found");
    assert_eq!(
        foreign.body["error"]["message"],
        unknown.body["error"]["message"]
    );
    a.get("/api/v1/me/sessions/not-a-uuid")
        .await
        .assert(400, "invalid_id");
    app.client()
        .get(&format!("/api/v1/me/sessions/{a_id}"))
        .await
        .assert(401, "unauthenticated");
}

#[tokio::test]
async fn a_customer_of_another_product_line_cannot_be_linked() {
    let app = TestApp::new();
    app.customer("100000001").await; // de-business only
    app.registered("at@example.com").await;
    let c = app.login("at@example.com").await;
    c.put("/api/v1/me/affiliation", json!({"affiliation": "at"}))
        .await
        .ok(204);
    c.post(
        "/api/v1/me/link/customer",
        json!({"customer_number": "100000001"}),
    )
    .await
    .assert(422, "affiliation_mismatch");
    assert!(c.get("/api/v1/me").await.ok(200)["customer"].is_null());
}

#[tokio::test]
async fn a_message_to_the_administrators_needs_an_administrator() {
    let app = TestApp::new();
    let op = app.operator("op@example.com").await;
    app.customer("100000001").await;
    // No administrator yet: the first member is active at once, with nobody to write to.
    app.member("first@example.com", "100000001").await;
    let c = app.login("first@example.com").await;
    let before = app.store.outbox().len();
    c.post("/api/v1/me/contact-admin", json!({"message": "Hallo?"}))
        .await
        .assert(409, "no_admin");
    assert_eq!(app.store.outbox().len(), before, "no mail queued");
    app.admin("chef@example.com", "100000001", &op).await;
    let r = c
        .post("/api/v1/me/contact-admin", json!({"message": "Hallo!"}))
        .await;
    assert_eq!(r.ok(202)["recipients"], 1);
}

#[tokio::test]
async fn a_failing_phone_gateway_answers_502_without_its_details() {
    use std::sync::atomic::Ordering;
    let app = TestApp::new();
    app.registered("gw@example.com").await;
    let c = app.login("gw@example.com").await;
    app.faults.sms_down.store(true, Ordering::SeqCst);
    let r = c
        .post(
            "/api/v1/me/mfa/phone",
            json!({"phone": "+49 170 1234567", "channel": "sms"}),
        )
        .await;
    r.assert(502, "send_failed");
    assert!(r.body["error"]["request_id"].is_string());
    assert!(!r.text.contains("sms.example.net"), "{}", r.text);
    assert!(app.sms.messages().is_empty());
    // The gateway is back: asking again works.
    app.faults.sms_down.store(false, Ordering::SeqCst);
    c.post(
        "/api/v1/me/mfa/phone",
        json!({"phone": "+49 170 1234567", "channel": "sms"}),
    )
    .await
    .ok(202);
    assert!(app.sms.last_code_to("+491701234567").is_some());
}

#[tokio::test]
async fn changes_that_keep_conflicting_answer_409_and_write_nothing() {
    use std::sync::atomic::Ordering;
    let app = TestApp::new();
    app.registered("busy@example.com").await;
    let c = app.login("busy@example.com").await;
    let audit = app.store.audit_len();
    app.faults.conflicting_commits.store(true, Ordering::SeqCst);
    c.put(
        "/api/v1/me",
        json!({"first_name": "Maria", "last_name": "Muster", "language": "en"}),
    )
    .await
    .assert(409, "conflict");
    // Reads need no commit and still work.
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.ok(200)["first_name"], "Anna");
    assert_eq!(app.store.audit_len(), audit);
    app.faults
        .conflicting_commits
        .store(false, Ordering::SeqCst);
    let r = c
        .put(
            "/api/v1/me",
            json!({"first_name": "Maria", "last_name": "Muster", "language": "en"}),
        )
        .await;
    assert_eq!(r.ok(200)["first_name"], "Maria");
}

#[tokio::test]
async fn the_sixteenth_message_to_the_administrators_in_a_day_answers_429_with_retry_after() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let before = app.mails_to("a@example.com").len();
    for _ in 0..15 {
        t.employee_a
            .post(
                "/api/v1/me/contact-admin",
                json!({"message": "Bitte freischalten."}),
            )
            .await
            .ok(202);
    }
    assert_eq!(app.mails_to("a@example.com").len(), before + 15);
    let r = t
        .employee_a
        .post(
            "/api/v1/me/contact-admin",
            json!({"message": "Bitte freischalten."}),
        )
        .await;
    r.assert(429, "throttled");
    let secs: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(secs > 0 && secs <= 86_400, "until midnight: {secs}");
    assert!(r.body["error"]["details"]["retry_at"].is_string());
    assert_eq!(
        app.mails_to("a@example.com").len(),
        before + 15,
        "nothing queued"
    );
}

#[tokio::test]
async fn guessing_customer_numbers_answers_429_after_the_free_failures() {
    let app = TestApp::new();
    app.customer("100000001").await;
    app.registered("rate@example.com").await;
    let c = app.login("rate@example.com").await;
    c.put(
        "/api/v1/me/affiliation",
        json!({"affiliation": "de-business"}),
    )
    .await
    .ok(204);
    for i in 0..6 {
        c.post(
            "/api/v1/me/link/customer",
            json!({"customer_number": format!("99999999{i}")}),
        )
        .await
        .assert(404, "customer_not_found");
    }
    let r = c
        .post(
            "/api/v1/me/link/customer",
            json!({"customer_number": "100000001"}),
        )
        .await;
    r.assert(429, "throttled");
    assert!(r.headers.contains_key("retry-after"));
    app.advance(TimeDelta::seconds(2));
    c.post(
        "/api/v1/me/link/customer",
        json!({"customer_number": "100000001"}),
    )
    .await
    .ok(200);
}
