//! The manual's flows, walked through the JSON API of the real server on Postgres, with every code
//! and link read out of the mails the SMTP server received.

use crate::support::browser::Browser;
use crate::support::world::*;
use serde_json::{Value, json};

const NUMBER: &str = "123456789";
const CUSTOMER: &str = "Musterbau GmbH";

/// The path of a customer's user.
fn user_path(id: &Value) -> String {
    format!("/customers/{NUMBER}/users/{}", id.as_str().expect("an id"))
}

/// The user with this address in the customer's user table (searched like the manual's
/// "Suchen").
async fn find_user(admin: &Browser, email: &str) -> Value {
    let page = admin
        .get(&format!("/customers/D{NUMBER}/users?q={email}&per_page=10"))
        .await;
    let items = page.expect(200)["items"].as_array().expect("items").clone();
    items
        .into_iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("{email} not in the user table: {}", page.text))
}

/// The categories (keys) of a change-log page, newest first.
fn categories(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["category"].as_str().expect("category").to_owned())
        .collect()
}

/// The entry of a category in a change-log page (the newest).
fn entry<'a>(page: &'a Value, category: &str) -> &'a Value {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["category"] == category)
        .unwrap_or_else(|| panic!("no {category} entry in {page:#}"))
}

/// Registration → code → affiliation → link by number → admin request → operator approval →
/// activation of a waiting colleague → admin request with consent → invitation → accept →
/// permissions incl. "Meine Daten" → contact the administrator → lock (the live session dies at
/// once) → unlock → forgot/reset password → change log per user → delete → change log per
/// customer.
#[tokio::test(flavor = "multi_thread")]
async fn the_manuals_flows_over_http_with_codes_and_links_from_delivered_mails() {
    let mut s = Stack::start().await;
    let op_email = "it-ops@vendor.example";
    let server = s
        .serve("portal", &[("PORTAL_OPERATOR_EMAIL", op_email)])
        .await;

    // The operator ("Sage Mitarbeiter"): the first start printed a one-time setup link; the
    // password is set there and confirmed with the mailed code.
    let token = server.first_operator_token().await;
    let op = Browser::new(&server);
    let op_person = Person {
        first: "Portal".into(),
        last: "Operator".into(),
        email: op_email.into(),
        password: "vendor staff kennwort 2026".into(),
    };
    let me = accept_invitation(&op, &mut s.smtp, &token, &op_person).await;
    assert_eq!(me["role"], "operator", "{me}");
    let again = op
        .post(
            &format!("/invitations/{token}/accept"),
            Some(json!({"password": op_person.password, "password_confirmation": op_person.password})),
        )
        .await;
    assert_eq!(
        again.status, 410,
        "the setup link works once: {}",
        again.text
    );
    let customer = create_customer(&op, &format!("D{NUMBER}"), CUSTOMER).await;
    assert_eq!(customer["printed_number"], format!("D{NUMBER}"));

    // 2.1 "Konto erstellen": no account and no session until the mailed code is confirmed.
    let anna_p = Person::new("Anna", "Schmidt", "musterbau.example");
    let anna = Browser::new(&server);
    let ticket = anna
        .post(
            "/auth/register",
            Some(json!({
                "email": anna_p.email, "first_name": anna_p.first, "last_name": anna_p.last,
                "password": anna_p.password, "password_confirmation": anna_p.password,
            })),
        )
        .await;
    let ticket = ticket.expect(202)["ticket"].as_str().unwrap().to_owned();
    let first = s
        .smtp
        .expect(&anna_p.email, "Verifizieren Sie Ihre E-Mail-Adresse")
        .await;
    assert_eq!(first.from, MAIL_FROM);
    assert!(first.text.contains("Hallo Anna"), "{}", first.text);
    login(&anna, &anna_p.email, &anna_p.password)
        .await
        .expect_error(401, "invalid_credentials");
    anna.get("/me").await.expect_error(401, "unauthenticated");
    let wrong = if first.code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    anna.post(
        "/auth/register/verify",
        Some(json!({"ticket": ticket, "code": wrong})),
    )
    .await
    .expect_error(400, "invalid_code");
    let user = verify(&anna, &ticket, &first.code()).await;
    assert_eq!(user["email"], anna_p.email.as_str());
    assert_eq!(user["customer"], Value::Null);

    // Produktzugehörigkeit, then the customer number (printed form, with spaces): the customer has
    // no administrator yet, so Anna is active at once with the defaults ("Meine Supportanfragen").
    assert_eq!(link(&anna, &format!(" D{NUMBER} ")).await, "active");
    let me = anna.get("/me").await.expect(200).clone();
    assert_eq!(me["customer"]["number"], NUMBER, "{me}");
    assert_eq!(me["customer"]["name"], CUSTOMER, "{me}");
    assert_eq!(me["role"], "employee");
    assert_eq!(keys(&me["permissions"]), ["support_requests"]);
    anna.get(&format!("/customers/{NUMBER}/users"))
        .await
        .expect_error(403, "forbidden");

    // 3.1 "Admin-Rechte beantragen": the operator is mailed, approves, Anna is administrator on
    // her very next request.
    let request = anna.post("/me/admin-request", None).await;
    assert_eq!(request.expect(201)["status"], "awaiting_approval");
    let request_id = request.body["id"].as_str().unwrap().to_owned();
    s.smtp
        .expect(&anna_p.email, "Ihr Antrag auf Admin-Rechte ist eingegangen")
        .await;
    let to_op = s
        .smtp
        .expect(
            op_email,
            "Antrag auf Admin-Rechte wartet auf Ihre Entscheidung",
        )
        .await;
    assert!(to_op.text.contains(&request_id), "{}", to_op.text);
    assert!(to_op.text.contains(CUSTOMER), "{}", to_op.text);
    let open = op
        .get("/operator/admin-requests?status=awaiting_approval")
        .await;
    let listed = open.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("request not listed: {}", open.text))
        .clone();
    assert_eq!(listed["requester_email"], anna_p.email.as_str());
    let approved = op
        .post(
            &format!("/operator/admin-requests/{request_id}/approve"),
            None,
        )
        .await;
    assert_eq!(approved.expect(200)["status"], "approved");
    s.smtp
        .expect(&anna_p.email, "Ihre Admin-Rechte wurden freigeschaltet")
        .await;
    assert_eq!(anna.get("/me").await.expect(200)["role"], "administrator");

    // With an administrator in place a new colleague waits for activation; the admin is mailed
    // and activates him ("Benutzerverwaltung"), and he is welcomed.
    let carl_p = Person::new("Carl", "Weber", "musterbau.example");
    let carl = Browser::new(&server);
    register(&carl, &mut s.smtp, &carl_p).await;
    assert_eq!(link(&carl, NUMBER).await, "pending_activation");
    let waiting = s
        .smtp
        .expect(&anna_p.email, "Neuer Benutzer wartet auf Freischaltung")
        .await;
    assert!(waiting.text.contains(&carl_p.email), "{}", waiting.text);
    let carl_row = find_user(&anna, &carl_p.email).await;
    assert_eq!(carl_row["status"], "pending_activation");
    let activated = anna
        .post(&format!("{}/activate", user_path(&carl_row["id"])), None)
        .await;
    assert_eq!(activated.expect(200)["status"], "active");
    s.smtp
        .expect(&carl_p.email, "Herzlich willkommen im Portal")
        .await;
    assert_eq!(carl.get("/me").await.expect(200)["status"], "active");

    // A second administrator needs the existing one's consent first, then the operator decides
    // (here: no).
    let second = carl.post("/me/admin-request", None).await;
    assert_eq!(second.expect(201)["status"], "awaiting_consent");
    let second_id = second.body["id"].as_str().unwrap().to_owned();
    let consent_mail = s
        .smtp
        .expect(
            &anna_p.email,
            "Zustimmung zu einem Antrag auf Admin-Rechte erforderlich",
        )
        .await;
    assert!(
        consent_mail.text.contains(&second_id),
        "{}",
        consent_mail.text
    );
    let pending = anna
        .get(&format!("/customers/{NUMBER}/admin-requests"))
        .await;
    assert!(pending.expect(200).to_string().contains(&second_id));
    let consented = anna
        .post(
            &format!("/customers/{NUMBER}/admin-requests/{second_id}/consent"),
            None,
        )
        .await;
    assert_eq!(consented.expect(200)["status"], "awaiting_approval");
    s.smtp
        .expect(&carl_p.email, "Zustimmung zu Ihrem Antrag auf Admin-Rechte")
        .await;
    s.smtp
        .expect(
            op_email,
            "Antrag auf Admin-Rechte wartet auf Ihre Entscheidung",
        )
        .await;
    let rejected = op
        .post(
            &format!("/operator/admin-requests/{second_id}/reject"),
            None,
        )
        .await;
    assert_eq!(rejected.expect(200)["status"], "rejected");
    s.smtp
        .expect(&carl_p.email, "Ihr Antrag auf Admin-Rechte wurde abgelehnt")
        .await;
    assert_eq!(carl.get("/me").await.expect(200)["role"], "employee");

    // 3.6 "Benutzer hinzufügen": Anna invites Ben with "Meine Supportanfragen"; Ben follows the
    // mailed link, sets his password, confirms the code, and lands active.
    let ben_p = Person::new("Ben", "Becker", "musterbau.example");
    let invited = anna
        .post(
            &format!("/customers/{NUMBER}/users"),
            Some(json!({
                "email": ben_p.email, "first_name": ben_p.first, "last_name": ben_p.last,
                "permissions": ["support_requests"],
            })),
        )
        .await;
    assert_eq!(invited.expect(201)["status"], "invited");
    let ben_id = invited.body["id"].clone();
    let invitation = s.smtp.expect(&ben_p.email, "Einladung zum Portal").await;
    assert!(
        invitation.text.contains(CUSTOMER),
        "the invitation names the company: {}",
        invitation.text
    );
    let token = invitation.token(&format!("{}/invitations/", server.origin));
    let ben = Browser::new(&server);
    let shown = ben.get(&format!("/invitations/{token}")).await;
    assert_eq!(shown.expect(200)["customer_name"], CUSTOMER);
    let ben_user = accept_invitation(&ben, &mut s.smtp, &token, &ben_p).await;
    assert_eq!(ben_user["status"], "active", "{ben_user}");
    assert_eq!(ben_user["id"], ben_id);
    assert_eq!(keys(&ben_user["permissions"]), ["support_requests"]);

    // 3.3 "Berechtigungen": single permissions, then the group "Meine Daten" at once ("Alle
    // anhaken" / "Alle abhaken"); each change applies to Ben's very next request.
    let perms = anna
        .put(
            &format!("{}/permissions", user_path(&ben_id)),
            json!({"permissions": ["support_requests", "documents"]}),
        )
        .await;
    assert_eq!(
        keys(&perms.expect(200)["permissions"]),
        ["documents", "support_requests"]
    );
    assert_eq!(
        keys(&ben.get("/me").await.expect(200)["permissions"]),
        ["documents", "support_requests"]
    );
    let my_data = ["licenses", "master_data", "payment_methods", "shop"];
    let all = anna
        .post(
            &format!("{}/permissions/groups/my_data", user_path(&ben_id)),
            None,
        )
        .await;
    let mut expected: Vec<&str> = my_data
        .iter()
        .copied()
        .chain(["documents", "support_requests"])
        .collect();
    expected.sort_unstable();
    assert_eq!(keys(&all.expect(200)["permissions"]), expected);
    assert_eq!(
        keys(&ben.get("/me").await.expect(200)["permissions"]),
        expected
    );
    let catalog = anna
        .get(&format!("{}/permissions", user_path(&ben_id)))
        .await;
    for p in catalog.expect(200)["catalog"].as_array().unwrap() {
        let key = p["key"].as_str().unwrap();
        if my_data.contains(&key) {
            assert_eq!(p["group"], "my_data", "{p}");
        }
        assert_eq!(p["granted"].as_bool(), Some(expected.contains(&key)), "{p}");
    }
    let none = anna
        .delete(&format!(
            "{}/permissions/groups/my_data",
            user_path(&ben_id)
        ))
        .await;
    assert_eq!(
        keys(&none.expect(200)["permissions"]),
        ["documents", "support_requests"]
    );
    anna.post(
        &format!("{}/permissions/groups/my_data", user_path(&ben_id)),
        None,
    )
    .await
    .expect(200);
    anna.put(
        &format!("{}/permissions", user_path(&ben_id)),
        json!({"permissions": ["no_such_area"]}),
    )
    .await
    .expect(422);

    // 3.2 Contact the administrator: the admins get the message by mail.
    let message = "Bitte schalten Sie mir die Belege frei.\nDanke, Ben";
    let sent = ben
        .post("/me/contact-admin", Some(json!({"message": message})))
        .await;
    assert_eq!(sent.expect(202)["recipients"], 1);
    let note = s
        .smtp
        .expect(
            &anna_p.email,
            "Nachricht eines Benutzers an den Administrator",
        )
        .await;
    assert!(
        note.text
            .contains("Bitte schalten Sie mir die Belege frei."),
        "{}",
        note.text
    );
    assert!(note.text.contains(&ben_p.email), "{}", note.text);

    // 3.4 "Benutzer sperren": Ben is logged in; the lock ends his live session at once (not
    // "after logout"), and he cannot log in.
    assert_eq!(ben.get("/me").await.status, 200);
    let locked = anna
        .post(
            &format!("{}/lock", user_path(&ben_id)),
            Some(json!({"reason": "Austritt geplant"})),
        )
        .await;
    assert_eq!(locked.expect(200)["status"], "locked");
    ben.get("/me").await.expect_error(401, "unauthenticated");
    s.smtp
        .expect(&ben_p.email, "Ihr Benutzerkonto wurde gesperrt")
        .await;
    login(&ben, &ben_p.email, &ben_p.password)
        .await
        .expect_error(401, "invalid_credentials");
    assert_eq!(find_user(&anna, &ben_p.email).await["status"], "locked");

    // "Benutzer entsperren": login works again; the old session stays dead.
    let old_cookie = ben
        .cookie("portal-session")
        .expect("the jar still holds the dead session's cookie");
    let unlocked = anna.delete(&format!("{}/lock", user_path(&ben_id))).await;
    assert_eq!(unlocked.expect(200)["status"], "active");
    s.smtp
        .expect(&ben_p.email, "Ihr Benutzerkonto wurde entsperrt")
        .await;
    ben.set_cookie("portal-session", &old_cookie);
    ben.get("/me").await.expect_error(401, "unauthenticated");
    login_ok(&ben, &ben_p).await;
    assert_eq!(ben.get("/me").await.status, 200);

    // 2.3 "Passwort vergessen": the mailed link sets a new password; the confirmation is mailed;
    // Ben's other sessions end; the link works once. An unknown address gets the same answer.
    let phone = Browser::new(&server);
    phone
        .post("/auth/password/forgot", Some(json!({"email": ben_p.email})))
        .await
        .expect(202);
    phone
        .post(
            "/auth/password/forgot",
            Some(json!({"email": "nobody@musterbau.example"})),
        )
        .await
        .expect(202);
    let reset = s
        .smtp
        .expect(&ben_p.email, "Ihr Passwort zurücksetzen")
        .await;
    let reset_token = reset.token(&format!("{}/password/reset/", server.origin));
    let new_password = "ein ganz neues kennwort";
    phone
        .post(
            "/auth/password/reset",
            Some(
                json!({"token": reset_token, "password": "kurz", "password_confirmation": "kurz"}),
            ),
        )
        .await
        .expect_error(422, "password_policy");
    phone
        .post(
            "/auth/password/reset",
            Some(json!({"token": reset_token, "password": new_password, "password_confirmation": new_password})),
        )
        .await
        .expect(204);
    s.smtp
        .expect(&ben_p.email, "Ihr Passwort wurde geändert")
        .await;
    ben.get("/me").await.expect_error(401, "unauthenticated");
    phone
        .post(
            "/auth/password/reset",
            Some(json!({"token": reset_token, "password": new_password, "password_confirmation": new_password})),
        )
        .await
        .expect_error(410, "link_used");
    login(&ben, &ben_p.email, &ben_p.password)
        .await
        .expect_error(401, "invalid_credentials");
    let ben_p = Person {
        password: new_password.into(),
        ..ben_p
    };
    login_ok(&ben, &ben_p).await;

    // 3.7 "Änderungsprotokoll" of Ben: every action by date and category, with who did it.
    let log = anna
        .get(&format!("{}/audit?per_page=100", user_path(&ben_id)))
        .await;
    let log = log.expect(200).clone();
    let cats = categories(&log);
    for c in [
        "user.created",
        "user.activated",
        "user.permissions_changed",
        "user.locked",
        "user.unlocked",
        "password.changed",
    ] {
        assert!(cats.contains(&c.to_owned()), "{c} missing in {cats:?}");
    }
    let lock_entry = entry(&log, "user.locked");
    assert_eq!(lock_entry["category_label"], "Benutzer gesperrt");
    assert_eq!(lock_entry["actor"], "Anna Schmidt");
    assert_eq!(
        entry(&log, "user.permissions_changed")["category_label"],
        "Berechtigungen geändert"
    );
    assert_eq!(
        entry(&log, "user.created")["category_label"],
        "Benutzer angelegt"
    );
    let times: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let only_locks = anna
        .get(&format!(
            "{}/audit?category=user.locked,user.unlocked",
            user_path(&ben_id)
        ))
        .await;
    let mut only = categories(only_locks.expect(200));
    only.sort();
    assert_eq!(only, ["user.locked", "user.unlocked"]);
    let log_text = log.to_string();
    for secret in [reset_token.as_str(), token.as_str(), new_password] {
        assert!(!log_text.contains(secret), "no secrets in the log");
    }

    // 3.5 "Benutzer löschen": Ben's session dies, his data is gone, his address is free again.
    assert_eq!(ben.get("/me").await.status, 200);
    anna.delete(&user_path(&ben_id)).await.expect(204);
    ben.get("/me").await.expect_error(401, "unauthenticated");
    anna.get(&user_path(&ben_id))
        .await
        .expect_error(404, "not_found");
    login(&ben, &ben_p.email, &ben_p.password)
        .await
        .expect_error(401, "invalid_credentials");

    // The customer's change log: the whole story, Ben only by a pseudonymous reference.
    let log = anna
        .get(&format!("/customers/{NUMBER}/audit?per_page=100"))
        .await;
    let log = log.expect(200).clone();
    let cats = categories(&log);
    for c in [
        "account.customer_linked",
        "admin_request.created",
        "admin_request.approved",
        "admin_request.consented",
        "admin_request.rejected",
        "user.activated",
        "user.created",
        "user.permissions_changed",
        "message.to_admins",
        "user.locked",
        "user.unlocked",
        "user.deleted",
    ] {
        assert!(cats.contains(&c.to_owned()), "{c} missing in {cats:?}");
    }
    assert_eq!(
        entry(&log, "user.deleted")["category_label"],
        "Benutzer gelöscht"
    );
    assert_eq!(
        entry(&log, "user.activated")["category_label"],
        "Benutzer aktiviert"
    );
    assert_eq!(
        entry(&log, "admin_request.approved")["actor"],
        "Portal-Mitarbeiter",
        "operators appear as vendor staff"
    );
    let log_text = log.to_string();
    assert!(
        !log_text.contains(&ben_p.email) && !log_text.contains("Becker"),
        "the deleted user appears only pseudonymously: {log:#}"
    );
    // Carl, an employee, may not read it.
    carl.get(&format!("/customers/{NUMBER}/audit"))
        .await
        .expect_error(403, "forbidden");

    // The address is free again: registering it mails a code, not an "existing account" notice.
    // (From another client address: this one has used up its registrations for the minute.)
    let again = Browser::from_address(&server, [127, 0, 0, 2].into());
    register(&again, &mut s.smtp, &ben_p).await;

    // Nothing was mailed to the unknown address of the reset request.
    assert!(
        !s.smtp
            .all()
            .iter()
            .any(|m| m.is_to("nobody@musterbau.example")),
        "{}",
        s.smtp.summary()
    );
    server.stop().await;
    s.finish().await;
}
