//! `display_name` over HTTP: a name must show something. Invisible-only names — blank Braille
//! (U+2800), a noncharacter (U+FFFF), private-use characters, fillers, marks or spaces alone —
//! are a 422 `invalid-request` and store nothing; ordinary names in any script are accepted.

use serde_json::{Value, json};

use crate::support::{StubTwilio, TestServer};

fn app(name: &str) -> Value {
    json!({"kind": "authenticator_app", "display_name": name, "device": "Pixel 8"})
}

#[tokio::test]
async fn names_without_a_visible_character_are_refused_and_store_nothing() {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, "").await;
    for name in [
        "\u{2800}",
        "\u{2800} \u{2800}",
        "\u{FFFF}",
        "\u{E000}",
        "\u{F8FF}\u{F0000}\u{10FFFD}",
        "\u{3164}",
        "\u{0301}",
        "\u{3000}",
    ] {
        let (status, body) = server.add_method("vera", app(name)).await;
        assert_eq!(status, 422, "{name:?}: {body}");
        assert_eq!(
            body["type"], "https://callverify.dev/problems/invalid-request",
            "{name:?}"
        );
    }
    assert_eq!(server.methods("vera").await["methods"], json!([]));

    for (user, name) in [
        ("wim", "Work phone"),
        ("xia", "華為 Mate"),
        ("yan", "⠁⠃ braille"),
        ("zoe", "📱"),
    ] {
        let (status, body) = server.add_method(user, app(name)).await;
        assert_eq!(status, 201, "{name:?}: {body}");
        assert_eq!(body["display_name"], name);
    }
}
