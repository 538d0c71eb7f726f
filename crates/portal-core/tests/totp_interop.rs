//! Interoperability of `portal_core::totp` with an independent implementation (Python `pyotp`,
//! installed by `scripts/test-deps`), and the enrolment QR codes decoded back with `rqrr`.
//!
//! `PORTAL_TEST_PYTHONPATH` names the directory holding `pyotp` (`scripts/test` sets it); when it
//! is unset, the test runs `scripts/test-deps` itself to get it.

use base64::Engine as _;
use chrono::{DateTime, TimeZone as _, Utc};
use portal_core::testing::SeededRandom;
use portal_core::totp::{self, TotpEnrolment, TotpRejected, TotpSecret};
use std::process::Command;

/// Times (Unix seconds) the implementations are compared at: the RFC 6238 table, step
/// boundaries, today, and past 2038 and u32 seconds.
const TIMES: [u64; 11] = [
    0,
    29,
    30,
    59,
    1_111_111_109,
    1_234_567_890,
    1_700_000_000,
    2_000_000_000,
    2_147_483_647,
    4_294_967_296,
    20_000_000_000,
];

/// Runs `python3 -c script args…` with pyotp importable; returns stdout lines.
fn python(script: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", portal_core::testing::test_tools_python_path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Python preamble: `when(t)` is Unix second `t` as an aware UTC datetime, so the result does
/// not depend on the machine's time zone.
const PRELUDE: &str = "import sys, datetime, pyotp\n\
    def when(t): return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc)\n";

fn at(unix: u64) -> DateTime<Utc> {
    Utc.timestamp_opt(i64::try_from(unix).unwrap(), 0).unwrap()
}

fn secrets() -> Vec<TotpSecret> {
    vec![
        TotpSecret::from_bytes(b"12345678901234567890").unwrap(),
        TotpSecret::generate(&SeededRandom::new(42)),
        TotpSecret::generate(&SeededRandom::new(4242)),
    ]
}

#[test]
fn pyotp_codes_are_accepted_by_our_verifier() {
    for secret in secrets() {
        let b32 = secret.to_base32();
        let times: Vec<String> = TIMES.iter().map(u64::to_string).collect();
        let mut args = vec![b32.expose()];
        args.extend(times.iter().map(String::as_str));
        // For each time: pyotp's codes for T-2, T-1, T, T+1, T+2.
        let lines = python(
            &format!(
                "{PRELUDE}otp = pyotp.TOTP(sys.argv[1])\n\
                 for t in sys.argv[2:]:\n    \
                 print(' '.join(otp.at(when(t), k) if int(t) // 30 + k >= 0 else '-' \
                 for k in (-2, -1, 0, 1, 2)))\n"
            ),
            &args,
        );
        assert_eq!(lines.len(), TIMES.len());
        for (&t, line) in TIMES.iter().zip(&lines) {
            let now = at(t);
            let step = t / 30;
            let codes: Vec<&str> = line.split(' ').collect();
            assert_eq!(codes.len(), 5, "{line}");
            assert_eq!(
                totp::code_at(&secret, now).expose(),
                codes[2],
                "same code at t={t}"
            );
            assert_eq!(
                totp::verify(&secret, codes[2], now, None),
                Ok(step),
                "t={t}"
            );
            assert_eq!(
                totp::verify(&secret, codes[3], now, None),
                Ok(step + 1),
                "t={t}"
            );
            assert_eq!(
                totp::verify(&secret, codes[4], now, None),
                Err(TotpRejected::Invalid),
                "t={t} T+2"
            );
            if step >= 1 {
                assert_eq!(
                    totp::verify(&secret, codes[1], now, None),
                    Ok(step - 1),
                    "t={t}"
                );
            }
            if step >= 2 {
                assert_eq!(
                    totp::verify(&secret, codes[0], now, None),
                    Err(TotpRejected::Invalid),
                    "t={t} T-2"
                );
            }
        }
    }
}

#[test]
fn our_codes_are_accepted_by_pyotp() {
    for secret in secrets() {
        let b32 = secret.to_base32();
        // Each argument: time, our code at that time, our code 60 s later (must fail there).
        let triples: Vec<String> = TIMES
            .iter()
            .map(|&t| {
                format!(
                    "{t},{},{}",
                    totp::code_at(&secret, at(t)).expose(),
                    totp::code_at(&secret, at(t + 60)).expose()
                )
            })
            .collect();
        let mut args = vec![b32.expose()];
        args.extend(triples.iter().map(String::as_str));
        let lines = python(
            &format!(
                "{PRELUDE}otp = pyotp.TOTP(sys.argv[1])\n\
                 for arg in sys.argv[2:]:\n    \
                 t, now, later = arg.split(',')\n    \
                 print(otp.verify(now, for_time=when(t)), otp.verify(later, for_time=when(t)))\n"
            ),
            &args,
        );
        assert_eq!(lines.len(), TIMES.len());
        for (&t, line) in TIMES.iter().zip(&lines) {
            assert_eq!(line, "True False", "pyotp verdicts at t={t}");
        }
    }
}

#[test]
fn pyotp_parses_our_otpauth_uri() {
    let secret = TotpSecret::generate(&SeededRandom::new(7));
    for (issuer, account) in [
        ("ACME Portal", "alice+mfa@example.com"),
        ("Müller GmbH", "jörg.müller@example.de"),
        ("Portal", "o'neil"),
    ] {
        let uri = totp::otpauth_uri(&secret, issuer, account).unwrap();
        let lines = python(
            &format!(
                "{PRELUDE}otp = pyotp.parse_uri(sys.argv[1])\n\
                 assert isinstance(otp, pyotp.TOTP)\n\
                 for v in (otp.secret, otp.issuer, otp.name, otp.digits, otp.interval, \
                 otp.digest().name):\n    print(v)\n"
            ),
            &[uri.expose()],
        );
        assert_eq!(
            lines,
            [
                secret.to_base32().expose(),
                issuer,
                account,
                "6",
                "30",
                "sha1"
            ],
            "{}",
            uri.expose()
        );
        assert_eq!(TotpSecret::from_base32(&lines[0]).unwrap(), secret);
    }
}

#[test]
fn secrets_written_by_pyotp_are_read_by_us() {
    // pyotp.random_base32() yields 32 base32 characters: 160 bits, as we generate.
    let lines = python(
        &format!(
            "{PRELUDE}s = pyotp.random_base32()\n\
             print(s)\nprint(pyotp.TOTP(s).at(when(1700000000)))\n"
        ),
        &[],
    );
    let secret = TotpSecret::from_base32(&lines[0]).unwrap();
    assert_eq!(secret.to_base32().expose(), lines[0]);
    assert_eq!(
        totp::verify(&secret, &lines[1], at(1_700_000_000), None),
        Ok(1_700_000_000 / 30)
    );
}

// ---------------------------------------------------------------------------------------------
// QR codes decode back to the URI
// ---------------------------------------------------------------------------------------------

fn decode_qr(mut image: rqrr::PreparedImage<qrcodegen_image::image::GrayImage>) -> String {
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one qr code in the image");
    grids[0].decode().expect("qr decodes").1
}

/// Paints our own SVG (a white background and a path of `M{x},{y}h1v1h-1z` squares) at 4 px per
/// module.
fn rasterize_svg(svg: &str) -> qrcodegen_image::image::GrayImage {
    const SCALE: u32 = 4;
    let view = svg
        .split("viewBox=\"0 0 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("viewBox");
    let side: u32 = view.parse().expect("numeric viewBox");
    let mut img = qrcodegen_image::image::GrayImage::from_pixel(
        side * SCALE,
        side * SCALE,
        qrcodegen_image::image::Luma([255]),
    );
    let path = svg
        .split(" d=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("path data");
    for square in path.split('z').filter(|s| !s.is_empty()) {
        let xy = square
            .strip_prefix('M')
            .and_then(|s| s.strip_suffix("h1v1h-1"))
            .unwrap_or_else(|| panic!("unexpected path segment {square:?}"));
        let (x, y) = xy.split_once(',').expect("x,y");
        let (x, y): (u32, u32) = (x.parse().unwrap(), y.parse().unwrap());
        for dy in 0..SCALE {
            for dx in 0..SCALE {
                img.put_pixel(
                    x * SCALE + dx,
                    y * SCALE + dy,
                    qrcodegen_image::image::Luma([0]),
                );
            }
        }
    }
    img
}

#[test]
fn qr_codes_decode_to_the_otpauth_uri() {
    let secret = TotpSecret::generate(&SeededRandom::new(11));
    let enrolment = TotpEnrolment::new(&secret, "ACME Portal", "alice@example.com").unwrap();
    let uri = enrolment.otpauth_uri();

    let svg = enrolment.qr_svg();
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "{}",
        &svg[..40]
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    let prepared = rqrr::PreparedImage::prepare(rasterize_svg(svg));
    assert_eq!(decode_qr(prepared), uri, "svg");

    let b64 = enrolment
        .qr_png_data_uri()
        .strip_prefix("data:image/png;base64,")
        .expect("png data uri prefix");
    let png = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("standard base64");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "png magic bytes");
    let image = qrcodegen_image::image::load_from_memory(&png)
        .expect("a readable png")
        .to_luma8();
    let prepared = rqrr::PreparedImage::prepare(image);
    assert_eq!(decode_qr(prepared), uri, "png");
}
