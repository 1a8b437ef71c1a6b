//! `netmon apply`, `netmon channels ls` and `netmon channels test` against provider channels:
//! the test send reaches the provider's fake with the real rendering, a refusal is reported with
//! the provider's reason (exit 1), and no credential appears in any output. Email the same way,
//! over SMTP to a fake server: accepted, then refused with a 5xx.

mod support;

use netmon_testkit::providers::{Answer, FakeProvider};
use netmon_testkit::smtp::FakeSmtp;
use support::Up;

#[test]
fn channels_are_applied_listed_and_tested_without_showing_secrets() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let slack = rt.block_on(FakeProvider::start());
    let pd = rt.block_on(FakeProvider::start());
    let smtp = rt.block_on(FakeSmtp::start());
    let up = Up::start("channels", "");
    let file = up.file(
        "channels.yaml",
        &format!(
            "channels:\n  - id: team\n    default: true\n    events: [opened, resolved]\n    slack: {{url: '{}'}}\n  - id: pager\n    pagerduty: {{routing_key: s3cr3t-pd, endpoint: '{}'}}\n  - id: mail\n    email: {{from: netmon@example.com, to: [ops@example.com], smtp: {{host: 127.0.0.1, port: {}, tls: none, username: netmon, password: s3cr3t-smtp}}}}\n",
            slack.url("services/T1/B1/s3cr3t-slack"),
            pd.url(""),
            smtp.addr.port()
        ),
    );
    let secrets = ["s3cr3t-slack", "s3cr3t-pd", "s3cr3t-smtp"];
    let no_secret = |what: &str, text: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{what} shows {s}:\n{text}");
        }
    };

    let (code, out, err) = up.run(&["apply", "-f", &file]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("+ channel team  (slack to 127.0.0.1)"),
        "{out}"
    );
    no_secret("apply", &(out + &err));
    let (code, out, _) = up.run(&["apply", "-f", &file]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("No changes"),
        "fingerprints compare equal: {out}"
    );

    let (code, out, err) = up.run(&["channels", "ls"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("team  slack  opened,resolved  default"),
        "{out}"
    );
    assert!(out.contains("pager  pagerduty  all events"), "{out}");
    let (_, json, _) = up.run(&["channels", "ls", "--output", "json"]);
    assert!(json.contains("<redacted sha256:"), "{json}");
    no_secret("the API's channel list", &json);

    let (code, out, err) = up.run(&["channels", "test", "team"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("channel team: test notification accepted"),
        "{out}"
    );
    let calls = slack.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].target, "/services/T1/B1/s3cr3t-slack");
    assert!(
        calls[0].body.contains("TEST DOWN: netmon test target"),
        "{}",
        calls[0].body
    );

    pd.then(Answer::new(
        400,
        r#"{"status":"invalid event","message":"Event object is invalid"}"#,
    ));
    let (code, out, err) = up.run(&["channels", "test", "pager"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("channel pager: not delivered: pagerduty http://127.0.0.1:")
            && out.contains("answered HTTP 400: {\"status\":\"invalid event\""),
        "{out}"
    );
    no_secret("a failed test", &(out + &err));
    assert_eq!(pd.calls()[0].json()["routing_key"], "s3cr3t-pd");

    let (code, out, err) = up.run(&["channels", "test", "mail"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("channel mail: test notification accepted"),
        "{out}"
    );
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .subject()
            .starts_with("[netmon] TEST DOWN: netmon test target")
    );
    assert_eq!(sent[0].auth, Some(("netmon".into(), "s3cr3t-smtp".into())));
    smtp.then("550 5.1.1 mailbox unavailable");
    let (code, out, err) = up.run(&["channels", "test", "mail"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("channel mail: not delivered: email via smtp 127.0.0.1:")
            && out.contains("mailbox unavailable"),
        "{out}"
    );
    no_secret("a failed email test", &(out + &err));
}
