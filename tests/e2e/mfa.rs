//! "Einrichtung der MFA": an authenticator app set up through the API (its first code computed by
//! pyotp from the `otpauth://` URI, as an independent authenticator would), logins with the second
//! step, "Mich auf diesem Gerät für 30 Tage merken", and the recovery code.

use crate::support::browser::Browser;
use crate::support::python_path;
use crate::support::world::*;
use portal_core::totp::{TotpSecret, code_at, time_step};
use serde_json::json;

/// What pyotp (an independent implementation) makes of an `otpauth://` URI now: the step, the
/// code of that step, the secret, the account name and the issuer.
async fn pyotp_now(uri: &str) -> (u64, String, String, String, String) {
    let script = "import pyotp, sys, time\n\
                  t = pyotp.parse_uri(sys.argv[1])\n\
                  now = time.time()\n\
                  print(int(now // t.interval), t.at(now), t.secret, t.name, t.issuer)\n";
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(uri)
        .env("PYTHONPATH", python_path())
        .output()
        .await
        .expect("run python3");
    assert!(
        out.status.success(),
        "pyotp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(f.len(), 5, "{text}");
    (
        f[0].parse().expect("step"),
        f[1].to_owned(),
        f[2].to_owned(),
        f[3].to_owned(),
        f[4].to_owned(),
    )
}

/// The app's code for `step` (a step at most one ahead of the server's clock is accepted).
fn code_for_step(secret: &TotpSecret, step: u64) -> String {
    let at = chrono::DateTime::from_timestamp(i64::try_from(step * 30).unwrap(), 0).unwrap();
    code_at(secret, at).expose().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_enrolment_login_with_the_second_step_remembered_device_and_recovery_code() {
    let mut s = Stack::start().await;
    let server = s.serve("portal", &[]).await;
    let lena_p = Person::new("Lena", "Lang", "kunde.example");
    let lena = Browser::new(&server);
    register(&lena, &mut s.smtp, &lena_p).await;

    // "Einrichten Multi-Faktor-Authentifizierung" needs a fresh authentication: prove the
    // password again (the session is rotated).
    let fresh = lena
        .post(
            "/auth/reauthenticate",
            Some(json!({"password": lena_p.password})),
        )
        .await;
    assert!(fresh.expect(200)["csrf_token"].is_string());
    let setup = lena.post("/me/mfa/totp", None).await;
    let setup = setup.expect(201).clone();
    let uri = setup["otpauth_uri"].as_str().expect("otpauth_uri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(setup["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(
        setup["qr_png"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );

    // The authenticator app (pyotp) reads the URI and shows the first code.
    let (step, first_code, py_secret, account, issuer) = pyotp_now(uri).await;
    assert_eq!(py_secret, setup["secret"].as_str().unwrap());
    assert_eq!(account, lena_p.email);
    assert_eq!(issuer, "Portal");
    let secret = TotpSecret::from_base32(&py_secret).expect("base32 secret");
    assert_eq!(
        code_for_step(&secret, step),
        first_code,
        "pyotp and the core agree"
    );
    let enabled = lena
        .post("/me/mfa/totp/confirm", Some(json!({"code": first_code})))
        .await;
    let recovery = enabled.expect(200)["recovery_code"]
        .as_str()
        .expect("a recovery code, shown once")
        .to_owned();
    s.smtp
        .expect(&lena_p.email, "Multi-Faktor-Authentifizierung eingerichtet")
        .await;
    let me = lena.get("/me").await.expect(200).clone();
    assert_eq!(me["mfa"]["enabled"], true, "{me}");
    assert!(
        me["mfa"]["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("totp"))
    );

    // Login now asks for the second step; the pending step opens nothing else.
    lena.post("/auth/logout", None).await.expect(204);
    let step1 = login(&lena, &lena_p.email, &lena_p.password).await;
    assert_eq!(
        step1.expect(200)["status"],
        "mfa_required",
        "{}",
        step1.text
    );
    assert!(
        step1.body["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("totp"))
    );
    lena.get("/me").await.expect_error(401, "unauthenticated");
    // The code already used for the confirmation is refused (a code counts once), and the
    // answer says so: wait for the next one.
    lena.post(
        "/auth/login/mfa",
        Some(json!({"method": "totp", "code": first_code})),
    )
    .await
    .expect_error(400, "code_already_used");
    // The next step's code (at most one step ahead of the server's clock, which is accepted).
    let next_step = (step + 1).max(time_step(chrono::Utc::now()));
    let done = lena
        .post(
            "/auth/login/mfa",
            Some(json!({
                "method": "totp",
                "code": code_for_step(&secret, next_step),
                "remember_device": true,
            })),
        )
        .await;
    let body = done.expect(200).clone();
    assert_eq!(body["device_remembered"], true, "{body}");
    assert_eq!(body["user"]["email"], lena_p.email.as_str());
    assert!(
        done.set_cookies()
            .iter()
            .any(|c| c.starts_with("portal-device=") && c.contains("HttpOnly")),
        "{:?}",
        done.set_cookies()
    );
    assert_eq!(lena.get("/me").await.status, 200);
    let sessions = lena.get("/me/sessions").await;
    assert!(
        sessions.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "remembered_device"),
        "{}",
        sessions.text
    );

    // "Mich auf diesem Gerät für 30 Tage merken": the next login skips the second factor, never
    // the password.
    lena.post("/auth/logout", None).await.expect(204);
    login(&lena, &lena_p.email, "falsches kennwort hier")
        .await
        .expect_error(401, "invalid_credentials");
    let remembered = login(&lena, &lena_p.email, &lena_p.password).await;
    assert_eq!(
        remembered.expect(200)["status"],
        "authenticated",
        "{}",
        remembered.text
    );

    // Forget the device: the second step is back; the recovery code gets past it once and a new
    // one is shown.
    lena.post("/auth/logout", Some(json!({"forget_device": true})))
        .await
        .expect(204);
    assert_eq!(lena.cookie("portal-device"), None);
    let step1 = login(&lena, &lena_p.email, &lena_p.password).await;
    assert_eq!(step1.expect(200)["status"], "mfa_required");
    let rescued = lena
        .post(
            "/auth/login/mfa",
            Some(json!({"method": "recovery_code", "code": recovery})),
        )
        .await;
    let body = rescued.expect(200).clone();
    assert_eq!(body["choose_new_factor"], true, "{body}");
    let new_recovery = body["recovery_code"]
        .as_str()
        .expect("a new recovery code")
        .to_owned();
    assert_ne!(new_recovery, recovery);
    s.smtp
        .expect(&lena_p.email, "Anmeldung mit Ihrem Wiederherstellungscode")
        .await;
    assert_eq!(lena.get("/me").await.status, 200);

    // The used recovery code is dead; the new one works.
    lena.post("/auth/logout", None).await.expect(204);
    login(&lena, &lena_p.email, &lena_p.password)
        .await
        .expect(200);
    lena.post(
        "/auth/login/mfa",
        Some(json!({"method": "recovery_code", "code": recovery})),
    )
    .await
    .expect_error(400, "invalid_code");
    lena.post(
        "/auth/login/mfa",
        Some(json!({"method": "recovery_code", "code": new_recovery})),
    )
    .await
    .expect(200);
    assert_eq!(lena.get("/me").await.expect(200)["mfa"]["enabled"], true);

    server.stop().await;
    s.finish().await;
}
