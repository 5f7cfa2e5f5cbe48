//! What a Redis operator sees: no phone number in any key name. The per-number rate limits
//! count under a keyed hash of the number (`abuse.number_key_secret`) and still hold.

use crate::support::{Options, StubTwilio, TestServer, keys_under};

async fn server(secret: &str) -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let extra = format!("[abuse]\nnumber_key_secret = \"{secret}\"\n");
    let options = Options {
        extra: &extra,
        production_limits: true,
        ..Options::default()
    };
    let server = TestServer::start_with(&stub.base, options).await;
    (stub, server)
}

/// The digits that identify the numbers the tests call, as they would show in a key name.
const NUMBERS: [&str; 2] = ["+14255550177", "+31201234599"];

async fn assert_no_number_in(prefix: &str) -> Vec<String> {
    let keys = keys_under(prefix).await;
    for key in &keys {
        for number in NUMBERS {
            let digits = &number[number.len() - 7..];
            assert!(!key.contains(digits), "{key} holds {number}");
        }
    }
    keys
}

#[tokio::test]
async fn rate_limit_keys_hold_a_keyed_hash_not_the_number() {
    for secret in ["deployment-secret-0123456789", ""] {
        let (_stub, server) = server(secret).await;
        for (user, number) in [("nina", NUMBERS[0]), ("noor", NUMBERS[1])] {
            let (status, body) = server.register(user, number).await;
            assert_eq!(status, 202, "{body}");
        }
        let keys = assert_no_number_in(&server.prefix).await;
        let per_number: Vec<_> = keys
            .iter()
            .filter(|k| k.contains(":rl:number:") || k.contains(":rl:number_spacing:"))
            .collect();
        assert_eq!(per_number.len(), 4, "{keys:?}");

        // The spacing limit still counts the number, whoever calls it.
        let (status, body) = server.register("olga", NUMBERS[0]).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["limit"], "number_spacing");
        assert_no_number_in(&server.prefix).await;
    }
}
