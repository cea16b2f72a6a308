//! The Salesforce simulator over loopback HTTP, one test per documented behaviour.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orglink_sandbox::salesforce::{self, SalesforceOptions};
use orglink_sandbox::scenario::SalesforceSeed;
use reqwest::{Client, StatusCode};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};

const V: &str = "/services/data/v62.0";
const ACME: &str = "001D000000IRFmaIAH";
const GLOBEX: &str = "001D000000IomazIAB";
const OLD_ACME: &str = "001D000000IqhSLIAZ";

struct Sf {
    base: String,
    http: Client,
    token: String,
}

async fn serve(opts: SalesforceOptions, seed: Value) -> String {
    let seed: SalesforceSeed = serde_json::from_value(seed).expect("seed");
    let app = salesforce::app(opts, seed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn small_world() -> Value {
    json!({
        "users": [{"Id": "005D000000AAAAA", "Email": "owner@example.com", "Name": "Olive Owner"}],
        "accounts": [
            {"Id": "001D000000IRFma", "Name": "Acme", "Type": "Customer - Direct",
             "Website": "https://www.acme.com", "OwnerId": "005D000000AAAAA",
             "Zendesk_Org_ID__c": "42"},
            {"Id": GLOBEX, "Name": "Globex", "Type": "Prospect"},
            {"Id": OLD_ACME, "Name": "Acme (old)", "IsDeleted": true,
             "MasterRecordId": ACME, "Zendesk_Org_ID__c": "7"}
        ],
        "opportunities": [
            {"AccountId": GLOBEX, "StageName": "Negotiation", "Probability": 80, "IsClosed": false,
             "IsWon": false, "Amount": 1000, "CloseDate": "2026-01-31"}
        ]
    })
}

async fn client_credentials(base: &str, http: &Client) -> reqwest::Response {
    http.post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "orglink-sandbox-consumer-key"),
            ("client_secret", "orglink-sandbox-consumer-secret"),
        ])
        .send()
        .await
        .unwrap()
}

impl Sf {
    async fn start_with(opts: SalesforceOptions, seed: Value) -> Sf {
        let base = serve(opts, seed).await;
        let http = Client::new();
        let body: Value = client_credentials(&base, &http).await.json().await.unwrap();
        Sf {
            token: body["access_token"].as_str().unwrap().to_string(),
            base,
            http,
        }
    }

    async fn start() -> Sf {
        Self::start_with(SalesforceOptions::default(), small_world()).await
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let r = req.bearer_auth(&self.token).send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await;
        (s, b)
    }

    async fn query(&self, soql: &str) -> (StatusCode, Value) {
        self.query_at("query", soql, None).await
    }

    async fn query_at(
        &self,
        endpoint: &str,
        soql: &str,
        batch: Option<u32>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .get(format!("{}{V}/{endpoint}", self.base))
            .query(&[("q", soql)]);
        if let Some(n) = batch {
            req = req.header("Sforce-Query-Options", format!("batchSize={n}"));
        }
        let (s, _, b) = self.send(req).await;
        (s, b)
    }

    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(self.http.patch(format!("{}{path}", self.base)).json(&body))
            .await;
        (s, b)
    }

    async fn admin_get(&self, what: &str) -> Value {
        self.http
            .get(format!("{}/_sandbox/{what}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn admin_post(&self, what: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/_sandbox/{what}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }
}

fn error_code(body: &Value) -> &str {
    body[0]["errorCode"].as_str().unwrap_or("<none>")
}

fn ids(body: &Value) -> Vec<&str> {
    body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// OAuth

#[tokio::test]
async fn client_credentials_token_has_the_documented_shape() {
    let base = serve(SalesforceOptions::default(), json!({})).await;
    let http = Client::new();
    let r = client_credentials(&base, &http).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["instance_url"], base.as_str());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["id"],
        "https://login.salesforce.com/id/00DSB00000000012AA/005SB0000000001YAA"
    );
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with("00DSB0000000001!")
    );
    assert!(body["issued_at"].as_str().unwrap().parse::<u64>().unwrap() > 1_700_000_000_000);
    assert!(body["signature"].is_string());
    assert!(body.get("refresh_token").is_none() && body.get("expires_in").is_none());

    // HTTP Basic works too.
    let r = http
        .post(format!("{base}/services/oauth2/token"))
        .basic_auth(
            "orglink-sandbox-consumer-key",
            Some("orglink-sandbox-consumer-secret"),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    for (form, error) in [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "orglink-sandbox-consumer-key"),
                ("client_secret", "wrong"),
            ],
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "someone"),
                ("client_secret", "x"),
            ],
            "invalid_client_id",
        ),
        (vec![("grant_type", "password")], "unsupported_grant_type"),
    ] {
        let r = http
            .post(format!("{base}/services/oauth2/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], error, "{form:?}");
        assert!(body["error_description"].is_string());
    }
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn jwt(claims: Value) -> String {
    let pem = std::fs::read_to_string(fixture("salesforce-jwt-test.key")).unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let sig = SigningKey::<sha2::Sha256>::new(key).sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

#[tokio::test]
async fn jwt_bearer_checks_signature_and_claims() {
    let opts = SalesforceOptions {
        jwt_public_key: Some(fixture("salesforce-jwt-test.pub.pem").into()),
        ..Default::default()
    };
    let base = serve(opts, json!({})).await;
    let http = Client::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = json!({"iss": "orglink-sandbox-consumer-key", "sub": "integration@orglink.sandbox",
        "aud": "https://login.salesforce.com", "exp": now + 180});
    let post = |assertion: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .post(format!("{base}/services/oauth2/token"))
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post(jwt(good.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none());

    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        jwt(c)
    };
    // simple-salesforce renders exp as a string of digits, rounded up past 3 minutes at times.
    let (status, body) = post(jwt(json!({"iss": "orglink-sandbox-consumer-key",
        "sub": "integration@orglink.sandbox", "aud": "https://login.salesforce.com",
        "exp": (now + 181).to_string()})))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (assertion, error) in [
        (
            with("aud", json!("https://test.salesforce.com")),
            "invalid_grant",
        ),
        (with("sub", json!("someone@else")), "invalid_grant"),
        (with("iss", json!("other-app")), "invalid_client_id"),
        (with("exp", json!(now - 10)), "invalid_grant"),
        (with("exp", json!(now + 250)), "invalid_grant"),
    ] {
        let (status, body) = post(assertion).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error)),
            "{body}"
        );
    }
    // A valid assertion with its claims swapped for others fails the signature check.
    let genuine = jwt(good);
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged_claims = URL_SAFE_NO_PAD.encode(
        json!({"iss": "orglink-sandbox-consumer-key", "sub": "admin@orglink.sandbox",
            "aud": "https://login.salesforce.com", "exp": now + 100})
        .to_string(),
    );
    let (status, body) = post(format!("{}.{forged_claims}.{}", parts[0], parts[2])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{body}"
    );
}

#[tokio::test]
async fn sessions_expire_on_demand_and_after_n_calls() {
    let sf = Sf::start().await;
    let (s, body) = sf.get(&format!("{V}/sobjects/Account/describe")).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    sf.admin_post("switches", json!({"session_max_calls": 2}))
        .await;
    // The token has made 1 call; one more is allowed, then it is dead.
    assert_eq!(
        sf.get(&format!("{V}/sobjects/Account/describe")).await.0,
        StatusCode::OK
    );
    let (s, body) = sf.get(&format!("{V}/sobjects/Account/describe")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );

    // A new token works until every session is expired at once.
    let fresh: Value = client_credentials(&sf.base, &sf.http)
        .await
        .json()
        .await
        .unwrap();
    let sf = Sf {
        token: fresh["access_token"].as_str().unwrap().into(),
        ..sf
    };
    assert_eq!(
        sf.get(&format!("{V}/sobjects/Account/describe")).await.0,
        StatusCode::OK
    );
    sf.admin_post(
        "switches",
        json!({"session_max_calls": 0, "expire_sessions_now": true}),
    )
    .await;
    assert_eq!(
        sf.get(&format!("{V}/sobjects/Account/describe")).await.0,
        StatusCode::UNAUTHORIZED
    );

    // No token at all is the same answer.
    let r = sf
        .http
        .get(format!("{}{V}/sobjects/Account/describe", sf.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------
// Query

#[tokio::test]
async fn query_returns_records_with_attributes_and_nested_owner() {
    let sf = Sf::start().await;
    let (s, body) = sf
        .query("SELECT Id, Name, Owner.Email, Zendesk_Org_ID__c FROM Account ORDER BY Name")
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["totalSize"], 2);
    assert_eq!(body["done"], true);
    assert!(body.get("nextRecordsUrl").is_none());
    let acme = &body["records"][0];
    assert_eq!(acme["attributes"]["type"], "Account");
    assert_eq!(
        acme["attributes"]["url"],
        format!("{V}/sobjects/Account/{ACME}")
    );
    assert_eq!(acme["Owner"]["Email"], "owner@example.com");
    assert_eq!(acme["Owner"]["attributes"]["type"], "User");
    assert_eq!(acme["Zendesk_Org_ID__c"], "42");
    assert_eq!(body["records"][1]["Owner"], Value::Null);
}

#[tokio::test]
async fn where_clauses_of_every_supported_kind() {
    let sf = Sf::start().await;
    let cases: &[(&str, &[&str])] = &[
        (
            "SELECT Id FROM Account WHERE Id = '001D000000IRFma'",
            &[ACME],
        ),
        (
            "SELECT Id FROM Account WHERE Id IN ('001D000000IRFmaIAH', '001D000000IomazIAB')",
            &[ACME, GLOBEX],
        ),
        (
            "SELECT Id FROM Account WHERE Id NOT IN ('001D000000IRFmaIAH')",
            &[GLOBEX],
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'acme' OR (Type = 'Prospect' AND NOT Name LIKE 'G%')",
            &[ACME],
        ),
        (
            "SELECT Id FROM Account WHERE Type LIKE 'Customer%' AND Website != null",
            &[ACME],
        ),
        (
            "SELECT Id FROM Account WHERE Zendesk_Org_ID__c = null",
            &[GLOBEX],
        ),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > 2000-01-01T00:00:00Z",
            &[ACME, GLOBEX],
        ),
        (
            "SELECT Id FROM Account WHERE SystemModstamp < 2000-01-01T00:00:00.000+01:00",
            &[],
        ),
        ("SELECT Id FROM Account WHERE Name = 'Acme\\'s'", &[]),
        (
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Opportunity WHERE Probability >= 75 AND IsClosed = false)",
            &[GLOBEX],
        ),
    ];
    for (soql, want) in cases {
        let (s, body) = sf.query(soql).await;
        assert_eq!(s, StatusCode::OK, "{soql}: {body}");
        assert_eq!(ids(&body), *want, "{soql}");
    }
    let (s, body) = sf
        .query("SELECT Id, StageName, Probability, IsWon, Amount, CloseDate, AccountId, SystemModstamp FROM Opportunity WHERE CloseDate > 2025-12-31 AND Amount >= 1000")
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let opp = &body["records"][0];
    assert_eq!(
        (opp["Probability"].as_f64(), opp["IsWon"].as_bool()),
        (Some(80.0), Some(false))
    );
    assert_eq!(opp["AccountId"], GLOBEX);
}

#[tokio::test]
async fn malformed_queries_and_unknown_fields_are_errors() {
    let sf = Sf::start().await;
    for (soql, code) in [
        (
            "SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Type = 'c'",
            "MALFORMED_QUERY",
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'bad \\x escape'",
            "MALFORMED_QUERY",
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'under\\_score'",
            "MALFORMED_QUERY",
        ),
        ("SELECT Id FROM Account OFFSET 5", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        ("SELECT Id, Nope__c FROM Account", "INVALID_FIELD"),
        (
            "SELECT Id FROM Account WHERE Owner.Phone = 'x'",
            "INVALID_FIELD",
        ),
        ("SELECT Id FROM Account ORDER BY Bogus", "INVALID_FIELD"),
        ("SELECT Id FROM Lead", "INVALID_TYPE"),
    ] {
        let (s, body) = sf.query(soql).await;
        assert_eq!(
            (s, error_code(&body)),
            (StatusCode::BAD_REQUEST, code),
            "{soql}: {body}"
        );
        assert!(
            body[0]["message"]
                .as_str()
                .unwrap()
                .contains("ERROR at Row:1:Column:"),
            "{body}"
        );
    }
    // LIKE escapes are fine inside LIKE.
    let (s, _) = sf
        .query("SELECT Id FROM Account WHERE Name LIKE 'under\\_score%'")
        .await;
    assert_eq!(s, StatusCode::OK);
}

fn many_accounts(n: usize) -> Value {
    let accounts: Vec<Value> = (0..n)
        .map(|i| {
            json!({"Name": format!("Customer {i:05}"), "Type": "Customer - Direct",
                "IsDeleted": i % 10 == 9})
        })
        .collect();
    json!({"accounts": accounts})
}

#[tokio::test]
async fn paging_follows_next_records_url_with_batch_size() {
    let sf = Sf::start_with(SalesforceOptions::default(), many_accounts(5000)).await;
    let (s, first) = sf
        .query_at(
            "query",
            "SELECT Id, Name FROM Account ORDER BY Name DESC",
            Some(1000),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(first["totalSize"], 4500);
    assert_eq!(first["done"], false);
    assert_eq!(first["records"].as_array().unwrap().len(), 1000);
    let mut names: Vec<String> = first["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap().to_string())
        .collect();
    let mut next = first["nextRecordsUrl"].as_str().unwrap().to_string();
    assert!(
        next.starts_with(&format!("{V}/query/01g")) && next.ends_with("-1000"),
        "{next}"
    );
    let mut pages = 1;
    loop {
        // Later pages keep the batch size the query was opened with.
        let (s, page) = sf.get(&next).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        pages += 1;
        names.extend(
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["Name"].as_str().unwrap().to_string()),
        );
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        next = page["nextRecordsUrl"].as_str().unwrap().to_string();
    }
    assert_eq!(pages, 5);
    assert_eq!(names.len(), 4500);
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted, "pages keep the ORDER BY across the cursor");
    sorted.dedup();
    assert_eq!(sorted.len(), 4500, "no record is served twice");

    // Default batch is 2000, and batchSize below 200 means 200.
    let (_, body) = sf.query("SELECT Id FROM Account").await;
    assert_eq!(body["records"].as_array().unwrap().len(), 2000);
    let (_, body) = sf
        .query_at("query", "SELECT Id FROM Account", Some(5))
        .await;
    assert_eq!(body["records"].as_array().unwrap().len(), 200);
    // LIMIT caps the total.
    let (_, body) = sf.query("SELECT Id FROM Account LIMIT 2100").await;
    assert_eq!(body["totalSize"], 2100);

    // A queryAll's nextRecordsUrl says `query` (as documented) and still yields deleted rows,
    // by either path.
    let (_, all) = sf
        .query_at("queryAll", "SELECT Id FROM Account", Some(4000))
        .await;
    assert_eq!(all["totalSize"], 5000);
    let next = all["nextRecordsUrl"].as_str().unwrap().to_string();
    assert!(next.starts_with(&format!("{V}/query/01g")), "{next}");
    let (_, rest) = sf.get(&next).await;
    // 4000 asked, 2000 the most a page holds.
    assert_eq!(rest["records"].as_array().unwrap().len(), 2000);
    assert_eq!(
        rest["nextRecordsUrl"].as_str().unwrap(),
        next.replace("-2000", "-4000")
    );
    let (_, again) = sf.get(&next.replace("/query/", "/queryAll/")).await;
    assert_eq!(again["records"], rest["records"]);

    // Pages may hold fewer records than asked for.
    sf.admin_post("switches", json!({"query_page_cap": 300}))
        .await;
    let (_, capped) = sf.query("SELECT Id FROM Account").await;
    assert_eq!(capped["records"].as_array().unwrap().len(), 300);
    assert!(capped["nextRecordsUrl"].as_str().unwrap().ends_with("-300"));
    sf.admin_post("switches", json!({"query_page_cap": 0}))
        .await;

    // A locator the sandbox never issued, or one expired by the switch.
    let (s, body) = sf.get(&format!("{V}/query/01gSB0000009999AAA-2000")).await;
    assert_eq!(
        (s, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR")
    );
    let (_, body) = sf.query("SELECT Id FROM Account").await;
    let next = body["nextRecordsUrl"].as_str().unwrap().to_string();
    sf.admin_post("switches", json!({"expire_query_locators_now": true}))
        .await;
    let (s, body) = sf.get(&next).await;
    assert_eq!(
        (s, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR")
    );
}

#[tokio::test]
async fn query_all_includes_deleted_and_merged_accounts() {
    let sf = Sf::start().await;
    let soql = "SELECT Id, IsDeleted, MasterRecordId, Zendesk_Org_ID__c FROM Account WHERE Zendesk_Org_ID__c != null";
    let (_, live) = sf.query(soql).await;
    assert_eq!(ids(&live), vec![ACME]);
    let (s, all) = sf.query_at("queryAll", soql, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&all), vec![ACME, OLD_ACME]);
    assert_eq!(all["records"][1]["MasterRecordId"], ACME);
    assert_eq!(all["records"][1]["IsDeleted"], true);
    // `query` ignores even an explicit IsDeleted = true.
    let (_, body) = sf
        .query("SELECT Id FROM Account WHERE IsDeleted = true")
        .await;
    assert_eq!(body["totalSize"], 0);
    let (_, body) = sf
        .query_at(
            "queryAll",
            "SELECT COUNT() FROM Account WHERE IsDeleted = true",
            None,
        )
        .await;
    assert_eq!(body["totalSize"], 1);
}

// ---------------------------------------------------------------------------------------------
// sObjects

#[tokio::test]
async fn sobject_get_accepts_both_id_forms_and_reports_errors() {
    let sf = Sf::start().await;
    let (s, body) = sf
        .get(&format!("{V}/sobjects/Account/001D000000IRFma"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["Id"], ACME);
    assert_eq!(
        body["Zendesk_Domain__c"],
        Value::Null,
        "known fields come back even when unset"
    );
    assert_eq!(body["attributes"]["type"], "Account");

    let (s, body) = sf
        .get(&format!("{V}/sobjects/Account/{ACME}?fields=Id,Name"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.as_object().unwrap().len(), 3);

    for (path, status, code) in [
        (
            format!("{V}/sobjects/Account/001D000000IRFmaZZZ"),
            400,
            "MALFORMED_ID",
        ),
        (
            format!("{V}/sobjects/Account/006D000000IRFma"),
            400,
            "MALFORMED_ID",
        ),
        (
            format!("{V}/sobjects/Account/001D000000XXXXX"),
            404,
            "NOT_FOUND",
        ),
        (
            format!("{V}/sobjects/Account/{OLD_ACME}"),
            404,
            "ENTITY_IS_DELETED",
        ),
        (
            format!("{V}/sobjects/Account/{ACME}?fields=Nope"),
            400,
            "INVALID_FIELD",
        ),
        (
            format!("/services/data/v99.0/sobjects/Account/{ACME}"),
            404,
            "NOT_FOUND",
        ),
    ] {
        let (s, body) = sf.get(&path).await;
        assert_eq!(
            (s.as_u16(), error_code(&body)),
            (status, code),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn sobject_patch_writes_logs_and_advances_the_modstamp() {
    let sf = Sf::start().await;
    let (_, before) = sf.get(&format!("{V}/sobjects/Account/{GLOBEX}")).await;
    let (s, body) = sf
        .patch(
            &format!("{V}/sobjects/Account/{}", &GLOBEX[..15]),
            json!({"Zendesk_Org_ID__c": "9001", "Zendesk_Sync_Status__c": "Linked"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null);
    let (_, after) = sf.get(&format!("{V}/sobjects/Account/{GLOBEX}")).await;
    assert_eq!(after["Zendesk_Org_ID__c"], "9001");
    assert!(after["SystemModstamp"].as_str() > before["SystemModstamp"].as_str());
    assert_eq!(after["SystemModstamp"], after["LastModifiedDate"]);
    assert_eq!(after["Name"], before["Name"], "only the fields sent change");

    let writes = sf.admin_get("writes").await;
    assert_eq!(writes.as_array().unwrap().len(), 1);
    let w = &writes[0];
    assert_eq!(
        (w["object"].as_str(), w["id"].as_str(), w["via"].as_str()),
        (Some("Account"), Some(GLOBEX), Some("sobject"))
    );
    assert_eq!(
        w["fields"]["Zendesk_Org_ID__c"],
        json!({"old": null, "new": "9001"})
    );
    assert_eq!(w["fields"].as_object().unwrap().len(), 2);
    assert_eq!(w["time"], after["SystemModstamp"]);

    for (body, status, code) in [
        (json!({"Nope__c": "x"}), 400, "INVALID_FIELD"),
        (
            json!({"SystemModstamp": "2025-01-01T00:00:00Z"}),
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (json!({"Zendesk_Org_ID__c": "42"}), 400, "DUPLICATE_VALUE"),
        (
            json!({"Last_Zendesk_Sync_At__c": 5}),
            400,
            "JSON_PARSER_ERROR",
        ),
    ] {
        let (s, resp) = sf
            .patch(&format!("{V}/sobjects/Account/{GLOBEX}"), body.clone())
            .await;
        assert_eq!(
            (s.as_u16(), error_code(&resp)),
            (status, code),
            "{body}: {resp}"
        );
    }
    let (s, resp) = sf
        .patch(
            &format!("{V}/sobjects/Account/{OLD_ACME}"),
            json!({"Zendesk_Domain__c": "acme.com"}),
        )
        .await;
    assert_eq!((s.as_u16(), error_code(&resp)), (404, "ENTITY_IS_DELETED"));
    assert_eq!(
        sf.admin_get("writes").await.as_array().unwrap().len(),
        1,
        "refused writes are not logged"
    );
}

#[tokio::test]
async fn an_opportunity_stage_decides_is_closed_and_is_won() {
    let opp = |n: u64| salesforce::ids::generate("006", n);
    let mut world = small_world();
    world["opportunities"] = json!([
        {"Id": opp(1), "AccountId": GLOBEX, "StageName": "Prospecting", "CloseDate": "2026-01-31"},
        {"Id": opp(2), "AccountId": ACME, "StageName": "Closed Won", "CloseDate": "2025-01-31"},
        {"Id": opp(3), "AccountId": ACME, "StageName": "Prospecting", "CloseDate": "2026-01-31"},
    ]);
    let sf = Sf::start_with(SalesforceOptions::default(), world).await;
    // (IsClosed, IsWon)
    let flags = |body: &Value| (body["IsClosed"].as_bool(), body["IsWon"].as_bool());
    let (open, won, lost) = (
        (Some(false), Some(false)),
        (Some(true), Some(true)),
        (Some(true), Some(false)),
    );
    let read = |n: u64| {
        let sf = &sf;
        async move {
            sf.get(&format!("{V}/sobjects/Opportunity/{}", opp(n)))
                .await
                .1
        }
    };
    // Seeds without the flags get what their stage means.
    assert_eq!(flags(&read(2).await), won, "seed");
    assert_eq!(flags(&read(1).await), open, "seed");

    // sObject PATCH: a closed won stage closes and wins it; the write log shows both.
    let path = format!("{V}/sobjects/Opportunity/{}", opp(1));
    let (s, body) = sf.patch(&path, json!({"StageName": "Closed Won"})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(flags(&read(1).await), won, "won");
    let writes = sf.admin_get("writes").await;
    assert_eq!(
        writes[0]["fields"]["IsWon"],
        json!({"old": false, "new": true})
    );
    // Closed Lost: closed, not won. Back to an open stage: neither.
    sf.patch(&path, json!({"StageName": "Closed Lost"})).await;
    assert_eq!(flags(&read(1).await), lost, "lost");
    sf.patch(
        &path,
        json!({"StageName": "Negotiation/Review", "Probability": 90}),
    )
    .await;
    assert_eq!(flags(&read(1).await), open, "open");

    // The flags themselves are read-only, alone or beside a stage.
    for (body, field) in [
        (json!({"IsWon": true}), "IsWon"),
        (
            json!({"StageName": "Closed Won", "IsClosed": true}),
            "IsClosed",
        ),
    ] {
        let (s, resp) = sf.patch(&path, body.clone()).await;
        assert_eq!(
            (s.as_u16(), error_code(&resp)),
            (400, "INVALID_FIELD_FOR_INSERT_UPDATE"),
            "{body}: {resp}"
        );
        assert_eq!(resp[0]["fields"], json!([field]), "{resp}");
    }
    assert_eq!(flags(&read(1).await), open, "refused");

    // Collections: per record, from the same stage list; a flag in a record fails that record.
    let rec = |n: u64, fields: Value| {
        let mut r = json!({"attributes": {"type": "Opportunity"}, "id": opp(n)});
        for (k, v) in fields.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let body = json!({"allOrNone": false, "records": [
        rec(3, json!({"StageName": "Closed Won"})),
        rec(2, json!({"IsWon": false})),
    ]});
    let (s, results) = sf.patch(&format!("{V}/composite/sobjects"), body).await;
    assert_eq!(s, StatusCode::OK, "{results}");
    assert_eq!(results[0]["success"], true, "{results}");
    assert_eq!(
        results[1]["errors"][0]["statusCode"],
        "INVALID_FIELD_FOR_INSERT_UPDATE"
    );
    assert_eq!(flags(&read(3).await), won, "composite");
    assert_eq!(flags(&read(2).await), won, "untouched");

    // A scenario's own stages: "Signed" is a won stage there.
    sf.admin_post(
        "switches",
        json!({"opportunity_stages": [{"name": "Open"}, {"name": "Signed", "closed": true, "won": true}]}),
    )
    .await;
    sf.patch(&path, json!({"StageName": "Signed"})).await;
    assert_eq!(flags(&read(1).await), won, "custom");
    let (_, won) = sf
        .query("SELECT Id FROM Opportunity WHERE IsWon = true AND IsClosed = true")
        .await;
    assert_eq!(won["totalSize"], 3, "{won}");
}

#[tokio::test]
async fn a_stage_change_brings_the_stage_default_probability_unless_the_write_sets_one() {
    let opp = |n: u64| salesforce::ids::generate("006", n);
    let mut world = small_world();
    world["opportunities"] = json!([
        {"Id": opp(1), "AccountId": GLOBEX, "StageName": "Prospecting", "Probability": 10, "CloseDate": "2026-01-31"},
        {"Id": opp(2), "AccountId": ACME, "StageName": "Prospecting", "Probability": 10, "CloseDate": "2026-01-31"},
        // A user overrode the stage's default (50).
        {"Id": opp(3), "AccountId": ACME, "StageName": "Value Proposition", "Probability": 35, "CloseDate": "2026-01-31"},
    ]);
    let sf = Sf::start_with(SalesforceOptions::default(), world).await;
    let probability = |n: u64| {
        let sf = &sf;
        async move {
            sf.get(&format!("{V}/sobjects/Opportunity/{}", opp(n)))
                .await
                .1["Probability"]
                .clone()
        }
    };
    let last_write = || {
        let sf = &sf;
        async move {
            let writes = sf.admin_get("writes").await;
            writes.as_array().unwrap().last().unwrap()["fields"].clone()
        }
    };
    let late = "SELECT AccountId FROM Opportunity WHERE IsClosed = false AND Probability >= 75";
    let (_, before) = sf.query(late).await;
    assert_eq!(before["totalSize"], 0, "{before}");

    // sObject PATCH of the stage alone: the new stage's default, in the write log like IsWon.
    let path = |n: u64| format!("{V}/sobjects/Opportunity/{}", opp(n));
    let (s, body) = sf
        .patch(&path(1), json!({"StageName": "Proposal/Price Quote"}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(probability(1).await, json!(75));
    assert_eq!(
        last_write().await["Probability"],
        json!({"old": 10, "new": 75})
    );
    // What a late-stage rule reads now finds the account.
    let (_, after) = sf.query(late).await;
    assert_eq!(after["totalSize"], 1, "{after}");
    assert_eq!(after["records"][0]["AccountId"], GLOBEX, "{after}");

    // The same write setting Probability keeps what it set.
    sf.patch(
        &path(1),
        json!({"StageName": "Negotiation/Review", "Probability": 80}),
    )
    .await;
    assert_eq!(probability(1).await, json!(80));
    // A write that leaves the stage as it is leaves an overridden probability alone.
    let (s, body) = sf
        .patch(
            &path(3),
            json!({"StageName": "Value Proposition", "Amount": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(probability(3).await, json!(35));
    assert!(last_write().await.get("Probability").is_none());

    // Collections: per record; closed stages bring 100 and 0.
    let rec = |n: u64, stage: &str| json!({"attributes": {"type": "Opportunity"}, "id": opp(n), "StageName": stage});
    let body = json!({"allOrNone": true, "records": [rec(2, "Closed Won"), rec(3, "Closed Lost")]});
    let (s, results) = sf.patch(&format!("{V}/composite/sobjects"), body).await;
    assert_eq!(s, StatusCode::OK, "{results}");
    assert!(
        results
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["success"] == true),
        "{results}"
    );
    assert_eq!(
        (probability(2).await, probability(3).await),
        (json!(100), json!(0))
    );
    assert_eq!(
        last_write().await["Probability"],
        json!({"old": 35, "new": 0})
    );

    // Switched off, Probability changes only when written.
    let (s, _) = sf
        .admin_post(
            "switches",
            json!({"opportunity_probability_follows_stage": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    sf.patch(&path(1), json!({"StageName": "Qualification"}))
        .await;
    assert_eq!(probability(1).await, json!(80));

    // A scenario's own stages: one without a probability (as written before the key
    // existed) leaves Probability as it is; one with a probability brings it.
    let (s, body) = sf
        .admin_post(
            "switches",
            json!({"opportunity_probability_follows_stage": true, "opportunity_stages": [
                {"name": "Open"}, {"name": "Signed", "closed": true, "won": true, "probability": 95}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    sf.patch(&path(1), json!({"StageName": "Open"})).await;
    assert_eq!(probability(1).await, json!(80));
    sf.patch(&path(1), json!({"StageName": "Signed"})).await;
    assert_eq!(probability(1).await, json!(95));
    // A stage's probability is a percentage.
    let (s, body) = sf
        .admin_post(
            "switches",
            json!({"opportunity_stages": [{"name": "Sure", "probability": 101}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("over 100"), "{body}");
}

#[tokio::test]
async fn limits_need_view_setup_and_every_answer_carries_the_usage() {
    let sf = Sf::start().await;
    let (s, headers, body) = sf.send(sf.http.get(format!("{}{V}/limits", sf.base))).await;
    assert_eq!(
        (s, error_code(&body)),
        (StatusCode::FORBIDDEN, "INSUFFICIENT_ACCESS"),
        "{body}"
    );
    assert_eq!(headers["sforce-limit-info"], "api-usage=1/100000");
    sf.admin_post("switches", json!({"integration_user_view_setup": true}))
        .await;
    let (s, headers, body) = sf.send(sf.http.get(format!("{}{V}/limits", sf.base))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(headers["sforce-limit-info"], "api-usage=2/100000");
    assert_eq!(
        body["DailyApiRequests"],
        json!({"Max": 100000, "Remaining": 99998})
    );
}

#[tokio::test]
async fn restricted_picklist_values_come_from_the_flag() {
    let opts = SalesforceOptions {
        sync_status_values: vec!["Linked".into(), "Error".into()],
        ..Default::default()
    };
    let sf = Sf::start_with(opts, small_world()).await;
    let path = format!("{V}/sobjects/Account/{GLOBEX}");
    let (s, body) = sf
        .patch(&path, json!({"Zendesk_Sync_Status__c": "Pending"}))
        .await;
    assert_eq!(
        (s.as_u16(), error_code(&body)),
        (400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    assert_eq!(
        sf.patch(&path, json!({"Zendesk_Sync_Status__c": "Error"}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sf.patch(&path, json!({"Zendesk_Sync_Status__c": null}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn composite_update_reports_each_record() {
    let sf = Sf::start().await;
    sf.admin_post(
        "switches",
        json!({"validation_rules": {"001D000000IRFma": "Closed accounts cannot change"},
               "row_locks": {GLOBEX: 1}}),
    )
    .await;
    let rec = |id: &str, fields: Value| {
        let mut r = json!({"attributes": {"type": "Account"}, "id": id});
        for (k, v) in fields.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let body = json!({"allOrNone": false, "records": [
        rec(GLOBEX, json!({"Zendesk_Domain__c": "globex.com"})),
        rec(GLOBEX, json!({"Zendesk_Domain__c": "globex.com"})),
        rec("001D000000IRFmaZZZ", json!({"Zendesk_Domain__c": "x"})),
        rec(ACME, json!({"Zendesk_Domain__c": "acme.com"})),
        rec(OLD_ACME, json!({"Zendesk_Domain__c": "acme.com"})),
        {"attributes": {"type": "Account"}, "Zendesk_Domain__c": "x"},
    ]});
    let (s, results) = sf.patch(&format!("{V}/composite/sobjects"), body).await;
    assert_eq!(s, StatusCode::OK, "{results}");
    let code = |i: usize| {
        results[i]["errors"][0]["statusCode"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(code(0), "UNABLE_TO_LOCK_ROW");
    assert_eq!(
        results[1],
        json!({"id": GLOBEX, "success": true, "errors": []})
    );
    assert_eq!(code(2), "MALFORMED_ID");
    assert!(
        results[2].get("id").is_none(),
        "a malformed id is not echoed"
    );
    assert_eq!(results[2]["errors"][0]["fields"], json!(["Id"]));
    assert_eq!(code(3), "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    assert_eq!(
        results[3]["errors"][0]["message"],
        "Closed accounts cannot change"
    );
    assert_eq!(results[3]["id"], ACME);
    assert_eq!(code(4), "ENTITY_IS_DELETED");
    assert_eq!(code(5), "MISSING_ARGUMENT");
    assert!(
        results[0]["errors"][0].get("errorCode").is_none(),
        "per-record errors use statusCode"
    );
    let writes = sf.admin_get("writes").await;
    assert_eq!(writes.as_array().unwrap().len(), 1);
    assert_eq!(writes[0]["via"], "composite");
}

#[tokio::test]
async fn composite_all_or_none_rolls_back_and_200_is_the_cap() {
    let sf = Sf::start().await;
    // Moving org id 42 from Acme to Globex works in one batch when Acme lets go first.
    let body = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Account"}, "id": ACME, "Zendesk_Org_ID__c": null},
        {"attributes": {"type": "Account"}, "id": GLOBEX, "Zendesk_Org_ID__c": "42"},
        {"attributes": {"type": "Account"}, "id": GLOBEX, "Bogus__c": 1},
    ]});
    let (s, results) = sf.patch(&format!("{V}/composite/sobjects"), body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        results[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        results[1]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(results[2]["errors"][0]["statusCode"], "INVALID_FIELD");
    let (_, acme) = sf.get(&format!("{V}/sobjects/Account/{ACME}")).await;
    assert_eq!(acme["Zendesk_Org_ID__c"], "42", "rolled back");
    assert_eq!(sf.admin_get("writes").await, json!([]));

    let body = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Account"}, "id": ACME, "Zendesk_Org_ID__c": null},
        {"attributes": {"type": "Account"}, "id": GLOBEX, "Zendesk_Org_ID__c": "42"},
    ]});
    let (_, results) = sf.patch(&format!("{V}/composite/sobjects"), body).await;
    assert_eq!(
        results
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["success"] == true)
            .count(),
        2
    );
    let (_, globex) = sf
        .query("SELECT Id FROM Account WHERE Zendesk_Org_ID__c = '42'")
        .await;
    assert_eq!(ids(&globex), vec![GLOBEX]);

    let too_many: Vec<Value> = (0..201)
        .map(|_| json!({"attributes": {"type": "Account"}, "id": ACME, "Zendesk_Domain__c": "a.com"}))
        .collect();
    let (s, body) = sf
        .patch(
            &format!("{V}/composite/sobjects"),
            json!({"records": too_many}),
        )
        .await;
    assert_eq!(
        (s, error_code(&body)),
        (StatusCode::BAD_REQUEST, "EXCEEDED_ID_LIMIT")
    );
}

// ---------------------------------------------------------------------------------------------
// Limits, faults, admin

#[tokio::test]
async fn every_response_reports_usage_and_the_budget_runs_out() {
    let opts = SalesforceOptions {
        daily_api_limit: 3,
        ..Default::default()
    };
    let sf = Sf::start_with(opts, small_world()).await;
    for used in 1..=3 {
        let (s, headers, _) = sf
            .send(
                sf.http
                    .get(format!("{}{V}/sobjects/Account/describe", sf.base)),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            headers["sforce-limit-info"],
            format!("api-usage={used}/3").as_str()
        );
    }
    let (s, headers, body) = sf
        .send(
            sf.http
                .get(format!("{}{V}/sobjects/Account/describe", sf.base)),
        )
        .await;
    assert_eq!(
        (s, error_code(&body)),
        (StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED")
    );
    assert_eq!(body[0]["message"], "TotalRequests Limit exceeded.");
    assert_eq!(headers["sforce-limit-info"], "api-usage=3/3");
    // Raising the allocation through the switches lets calls through again.
    sf.admin_post("switches", json!({"daily_api_limit": 10}))
        .await;
    assert_eq!(
        sf.get(&format!("{V}/sobjects/Account/describe")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn faults_answer_like_salesforce_and_are_counted() {
    let sf = Sf::start().await;
    let (s, _) = sf
        .admin_post(
            "faults",
            json!({"endpoints": {"sf.query": {"error_5xx": 1.0}, "sf.sobject_get": {"rate_limit_429": 1.0}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = sf.query("SELECT Id FROM Account").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (s, body) = sf.get(&format!("{V}/sobjects/Account/{ACME}")).await;
    assert_eq!(
        (s, error_code(&body)),
        (StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED")
    );
    sf.admin_post("switches", json!({"unavailable_body": "html"}))
        .await;
    let r = sf
        .http
        .get(format!("{}{V}/query", sf.base))
        .query(&[("q", "SELECT Id FROM Account")])
        .bearer_auth(&sf.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().starts_with("<html>"));
    // Other endpoints are untouched; the admin API never faults.
    assert_eq!(
        sf.query_at("queryAll", "SELECT Id FROM Account", None)
            .await
            .0,
        StatusCode::OK
    );
    let calls = sf.admin_get("calls").await;
    assert_eq!(calls["sf.query"]["503"], 2);
    assert_eq!(calls["sf.sobject_get"]["403"], 1);
    assert_eq!(calls["sf.query_all"]["200"], 1);
    assert_eq!(calls["sf.token"]["200"], 1);
}

#[tokio::test]
async fn state_dumps_in_the_scenario_format_and_reloads() {
    let sf = Sf::start().await;
    sf.patch(
        &format!("{V}/sobjects/Account/{GLOBEX}"),
        json!({"Zendesk_Domain__c": "globex.com"}),
    )
    .await;
    let state = sf.admin_get("state").await;
    let accounts = state["salesforce"]["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 3);
    assert!(
        accounts
            .iter()
            .any(|a| a["Zendesk_Domain__c"] == "globex.com")
    );
    assert_eq!(
        state["salesforce"]["opportunities"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Reset goes back to the startup seed and clears the write log.
    sf.admin_post("reset", json!({})).await;
    assert_eq!(sf.admin_get("writes").await, json!([]));
    let (_, globex) = sf.get(&format!("{V}/sobjects/Account/{GLOBEX}")).await;
    assert_eq!(globex["Zendesk_Domain__c"], Value::Null);

    // Loading the dump reproduces it.
    let (s, _) = sf.admin_post("scenario", state.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sf.admin_get("state").await, state);

    let (s, body) = sf
        .admin_post(
            "scenario",
            json!({"salesforce": {"accounts": [{"Id": "not-an-id"}]}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("accounts[0]"),
        "{body}"
    );
    let (s, body) = sf
        .admin_post("switches", json!({"no_such_switch": 1}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_scenario_can_carry_locks_and_validation_rules() {
    let mut world = small_world();
    world["switches"] = json!({
        "row_locks": {&GLOBEX[..15]: 1},
        "validation_rules": {ACME: "Billing review in progress"},
    });
    let sf = Sf::start_with(SalesforceOptions::default(), world.clone()).await;
    let path = format!("{V}/sobjects/Account/{GLOBEX}");
    let body = json!({"Zendesk_Domain__c": "globex.com"});
    let (s, resp) = sf.patch(&path, body.clone()).await;
    assert_eq!((s.as_u16(), error_code(&resp)), (400, "UNABLE_TO_LOCK_ROW"));
    assert_eq!(
        sf.patch(&path, body.clone()).await.0,
        StatusCode::NO_CONTENT,
        "the lock was for one write"
    );
    let (s, resp) = sf
        .patch(&format!("{V}/sobjects/Account/{ACME}"), body.clone())
        .await;
    assert_eq!(
        (s.as_u16(), error_code(&resp)),
        (400, "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    );
    assert_eq!(resp[0]["message"], "Billing review in progress");

    // Reset restores the scenario's switches, lock included.
    sf.admin_post("reset", json!({})).await;
    let switches = sf.admin_get("switches").await;
    assert_eq!(switches["row_locks"][GLOBEX], 1);
    // Loading a scenario without switches clears them.
    sf.admin_post("scenario", json!({"salesforce": small_world()}))
        .await;
    assert_eq!(sf.patch(&path, body).await.0, StatusCode::NO_CONTENT);

    let (s, resp) = sf
        .admin_post(
            "scenario",
            json!({"salesforce": {"switches": {"row_locks": {"garbage": 1}}}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{resp}");
}
